//! A process's memory figures as the kernel reports them under `/proc`.

/// Field `field` (e.g. `VmRSS`, `AnonHugePages`) of `/proc/<process>/<file>` (e.g. `status`,
/// `smaps_rollup`), in kB; `process` is a pid or `self`. `None` if the process or the field is
/// not there.
pub fn memory_kb(process: impl std::fmt::Display, file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{process}/{file}")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
