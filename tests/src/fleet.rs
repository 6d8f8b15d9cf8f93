//! Worker processes a test kills and restarts: the crash half of fault injection.

use std::process::{Child, Command};

/// A set of named worker processes, each restartable from its command.
pub struct Fleet {
    members: Vec<Member>,
}

struct Member {
    name: String,
    make: Box<dyn Fn() -> Command + Send>,
    child: Child,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    pub fn new() -> Self {
        Self {
            members: Vec::new(),
        }
    }

    /// Starts a member; `make` builds its command again for every restart.
    pub fn add(&mut self, name: &str, make: impl Fn() -> Command + Send + 'static) -> usize {
        let child = make()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.members.push(Member {
            name: name.to_owned(),
            make: Box::new(make),
            child,
        });
        self.members.len() - 1
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    pub fn pid(&self, i: usize) -> u32 {
        self.members[i].child.id()
    }

    /// `kill -9` (the process gets no chance to clean up), then start it again.
    pub fn kill_and_restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        let _ = m.child.kill();
        let _ = m.child.wait();
        m.child = (m.make)()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot restart {}: {e}", m.name));
    }

    /// Members that exited by themselves (they should not).
    pub fn exited(&mut self) -> Vec<String> {
        self.members
            .iter_mut()
            .filter_map(|m| match m.child.try_wait() {
                Ok(Some(status)) => Some(format!("{} ({status})", m.name)),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.child.kill();
            let _ = m.child.wait();
        }
    }
}
