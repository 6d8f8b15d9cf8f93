//! Who a request acts for, what it may do, and which batches it may see.

use std::collections::BTreeSet;

use trd_core::domain::{AudioFile, BatchName};
use trd_core::store::identity::Scope;

use crate::error::ApiError;

/// The one who makes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// How the audit trail names it: `key:<id>`, `user:<name>`, `admin-token`,
    /// `anonymous@<address>`.
    pub label: String,
    /// The highest scope held (each includes the ones below); `None`: nothing but the
    /// public routes.
    pub scope: Option<Scope>,
    /// The batches it is limited to; `None`: every batch.
    pub batches: Option<BTreeSet<String>>,
}

impl Principal {
    pub fn new(label: String, scopes: &[Scope], batches: Option<&[BatchName]>) -> Self {
        Principal {
            label,
            scope: scopes.iter().copied().max(),
            batches: batches.map(|b| b.iter().map(|n| n.as_str().to_owned()).collect()),
        }
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scope.is_some_and(|held| held >= scope)
    }

    /// 403 unless the principal holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.allows(scope) {
            return Ok(());
        }
        let held = self.scope.map_or("no".to_owned(), |s| format!("the `{s}`"));
        Err(ApiError::Forbidden(format!(
            "this needs the `{scope}` scope; {} has {held} scope",
            self.label
        )))
    }

    /// Whether the principal may see a file of `batch` (`None`: a file outside any batch,
    /// which only an unlimited principal sees).
    pub fn sees(&self, batch: Option<&BatchName>) -> bool {
        self.sees_name(batch.map(BatchName::as_str))
    }

    fn sees_name(&self, batch: Option<&str>) -> bool {
        match (&self.batches, batch) {
            (None, _) => true,
            (Some(allowed), Some(batch)) => allowed.contains(batch),
            (Some(_), None) => false,
        }
    }

    /// The batches a query must be narrowed to; `None`: no narrowing.
    pub fn batch_filter(&self) -> Option<Vec<String>> {
        self.batches.as_ref().map(|b| b.iter().cloned().collect())
    }

    /// 404 for a batch outside the principal's, as if it did not exist: a tenant must not
    /// learn which other batches there are.
    pub fn check_batch(&self, batch: &BatchName) -> Result<(), ApiError> {
        if self.sees(Some(batch)) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!(
                "no batch '{batch}' (no registered files in it)"
            )))
        }
    }

    /// 404 for a record outside the principal's batches, worded as for a missing one.
    pub fn check_record(&self, record: &AudioFile) -> Result<(), ApiError> {
        if self.sees_name(record.batch.as_deref()) {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("no audio file {}", record.id)))
        }
    }

    /// The batches a new credential it creates is limited to, parsed: a principal limited
    /// to batches can only hand out some of its own.
    pub fn grant(&self, batches: Option<&[String]>) -> Result<Option<Vec<BatchName>>, ApiError> {
        let parsed = batches
            .map(|names| {
                names
                    .iter()
                    .map(|n| BatchName::parse(n.trim()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        if self.batches.is_some()
            && !parsed
                .as_ref()
                .is_some_and(|b| b.iter().all(|n| self.sees(Some(n))))
        {
            return Err(ApiError::Forbidden(
                "a credential limited to batches can only grant some of its own batches".into(),
            ));
        }
        Ok(parsed)
    }

    /// 404 for a place a limited principal may not put files in.
    pub fn check_destination(&self, batch: Option<&BatchName>) -> Result<(), ApiError> {
        if self.sees(batch) {
            return Ok(());
        }
        Err(ApiError::NotFound(match batch {
            Some(b) => format!("no batch '{b}'"),
            None => "files outside a batch are not available to this credential".to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(name: &str) -> BatchName {
        BatchName::parse(name).unwrap()
    }

    #[test]
    fn scopes_include_the_ones_below() {
        let operator = Principal::new("k".into(), &[Scope::Operate], None);
        assert!(operator.allows(Scope::Read));
        assert!(operator.allows(Scope::Operate));
        assert!(!operator.allows(Scope::Admin));
        let err = operator.require(Scope::Admin).unwrap_err();
        assert!(err.to_string().contains("`admin`"), "{err}");
        let nobody = Principal::new("anonymous@10.0.0.1".into(), &[], None);
        assert!(!nobody.allows(Scope::Read));
    }

    #[test]
    fn a_tenant_sees_only_its_batches() {
        let a = [batch("A")];
        let tenant = Principal::new("k".into(), &[Scope::Read], Some(&a));
        assert!(tenant.sees(Some(&batch("A"))));
        assert!(!tenant.sees(Some(&batch("B"))));
        assert!(!tenant.sees(None));
        assert!(tenant.check_batch(&batch("B")).is_err());
        let everyone = Principal::new("k".into(), &[Scope::Read], None);
        assert!(everyone.sees(None));
    }
}
