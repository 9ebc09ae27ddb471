//! One test of this test binary run again in a child process, for a check that must not
//! run in the test runner: one that changes the process (a resource limit, a mount
//! namespace) or may kill it. The child finds its work in an environment variable, which
//! the parent's run of the test does not have.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::process::{Command, ExitStatus};

/// How a child ended and what it printed.
#[derive(Debug)]
pub struct ChildOutput {
    /// The child's exit status (the wrapper's, when there is one).
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl fmt::Display for ChildOutput {
    /// The standard output, then the standard error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.stdout, self.stderr)
    }
}

/// Why a child's test did not pass.
#[derive(Debug)]
pub enum ChildTestError {
    /// The child, or the wrapper in front of it, could not be started.
    NotStarted(io::Error),
    /// The child ended with a failure: its test failed, or the wrapper did.
    Failed(ChildOutput),
    /// The child ended well without saying "1 passed": the name selected no test.
    NotRun(ChildOutput),
}

/// Runs the test named `test` (its full path in the binary) of this test binary again, in
/// a child process with the environment variable `env` set, alone and with its output
/// shown; `wrapper`, a program and its arguments, runs the child when given. Passes when
/// the child ends well and says "1 passed".
pub fn rerun(
    test: &str,
    env: (&str, &OsStr),
    wrapper: Option<(&str, &[&str])>,
) -> Result<ChildOutput, ChildTestError> {
    let this_binary = std::env::current_exe().expect("the path of this test binary");
    let mut command = match wrapper {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(this_binary);
            command
        }
        None => Command::new(this_binary),
    };
    let out = command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .output()
        .map_err(ChildTestError::NotStarted)?;
    let out = ChildOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        Err(ChildTestError::Failed(out))
    } else if !out.to_string().contains("1 passed") {
        Err(ChildTestError::NotRun(out))
    } else {
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "RINGNET_TESTKIT_CHILD_TEST";

    #[test]
    fn a_test_run_again_passes_with_its_variable_set() {
        if let Some(value) = std::env::var_os(CHILD) {
            assert_eq!(value, "set");
            return;
        }
        let out = rerun(
            "child_test::tests::a_test_run_again_passes_with_its_variable_set",
            (CHILD, OsStr::new("set")),
            // `env` runs its command unchanged: the wrapper is passed the binary and its
            // arguments.
            Some(("env", &[])),
        )
        .unwrap();
        assert!(out.stdout.contains("1 passed"), "{out}");
    }

    #[test]
    fn a_name_that_selects_no_test_is_not_run() {
        let outcome = rerun("no_such_test", (CHILD, OsStr::new("set")), None);
        assert!(
            matches!(outcome, Err(ChildTestError::NotRun(_))),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_failing_wrapper_fails() {
        let outcome = rerun(
            "no_such_test",
            (CHILD, OsStr::new("set")),
            Some(("false", &[])),
        );
        assert!(
            matches!(outcome, Err(ChildTestError::Failed(_))),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_missing_wrapper_is_not_started() {
        let outcome = rerun(
            "no_such_test",
            (CHILD, OsStr::new("set")),
            Some(("/nonexistent/wrapper", &[])),
        );
        assert!(
            matches!(outcome, Err(ChildTestError::NotStarted(_))),
            "{outcome:?}"
        );
    }
}
