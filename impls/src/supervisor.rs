//! A supervisor of local processes: each one started from a command of the caller's, watched,
//! killed (`kill -9`) and started again. [`crate::cluster::Cluster`] supervises `node`
//! processes with it, and `mr run` its coordinator and workers.

use std::process::{Child, Command, ExitStatus};

/// How to start one process (again).
pub type MakeCommand = Box<dyn Fn() -> std::io::Result<Command> + Send>;

struct Proc {
    name: String,
    make: MakeCommand,
    child: Option<Child>,
    /// Its last exit status, once it exited (or was killed).
    exited: Option<ExitStatus>,
    starts: u32,
}

/// The processes, by index. Dropping the supervisor kills them.
#[derive(Default)]
pub struct Supervisor {
    procs: Vec<Proc>,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// Adds a process, not yet started; returns its index.
    pub fn add(&mut self, name: impl Into<String>, make: MakeCommand) -> usize {
        self.procs.push(Proc {
            name: name.into(),
            make,
            child: None,
            exited: None,
            starts: 0,
        });
        self.procs.len() - 1
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.procs[i].name
    }

    /// How many times process `i` was started.
    pub fn starts(&self, i: usize) -> u32 {
        self.procs[i].starts
    }

    /// Starts process `i` unless it runs; returns its pid.
    pub fn start(&mut self, i: usize) -> std::io::Result<u32> {
        if self.is_running(i) {
            return Ok(self.procs[i].child.as_ref().map_or(0, Child::id));
        }
        let p = &mut self.procs[i];
        let child = (p.make)()?
            .spawn()
            .map_err(|e| std::io::Error::new(e.kind(), format!("starting {}: {e}", p.name)))?;
        let pid = child.id();
        p.child = Some(child);
        p.exited = None;
        p.starts += 1;
        Ok(pid)
    }

    /// Whether process `i` runs (reaping it if it exited).
    pub fn is_running(&mut self, i: usize) -> bool {
        self.exited(i).is_none() && self.procs[i].child.is_some()
    }

    /// Process `i`'s exit status, once it has exited.
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let p = &mut self.procs[i];
        if let Some(c) = &mut p.child {
            if let Ok(Some(status)) = c.try_wait() {
                p.exited = Some(status);
                p.child = None;
            }
        }
        p.exited
    }

    /// Process `i`'s pid while it runs.
    pub fn pid(&mut self, i: usize) -> Option<u32> {
        if self.is_running(i) {
            self.procs[i].child.as_ref().map(Child::id)
        } else {
            None
        }
    }

    /// `kill -9` process `i` (no chance to flush or say goodbye) and reap it.
    pub fn kill(&mut self, i: usize) {
        let p = &mut self.procs[i];
        if let Some(mut c) = p.child.take() {
            let _ = c.kill();
            p.exited = c.wait().ok();
        }
    }

    /// Kills every process.
    pub fn stop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_start_exit_restart_and_die_with_the_supervisor() {
        let mut s = Supervisor::new();
        let quick = s.add(
            "true",
            Box::new(|| {
                let mut c = Command::new("sh");
                c.args(["-c", "exit 3"]);
                Ok(c)
            }),
        );
        let slow = s.add(
            "sleep",
            Box::new(|| {
                let mut c = Command::new("sleep");
                c.arg("30");
                Ok(c)
            }),
        );
        s.start(quick).unwrap();
        let pid = s.start(slow).unwrap();
        assert_eq!(
            s.start(slow).unwrap(),
            pid,
            "a running process is not started twice"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while s.exited(quick).is_none() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(s.exited(quick).unwrap().code(), Some(3));
        assert!(s.is_running(slow));
        s.start(quick).unwrap();
        assert_eq!(s.starts(quick), 2);
        s.kill(slow);
        assert!(!s.is_running(slow));
        assert!(s.exited(slow).is_some());
        drop(s);
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}
