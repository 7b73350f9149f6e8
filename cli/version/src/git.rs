//! The commit a directory's git checkout is at, and the files whose change
//! can move it, at the paths `git` reports for them (in a worktree, HEAD
//! and its reflog are the worktree's own; branches are in the common
//! directory).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory's git checkout, as the macros see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkout {
    /// `git rev-parse --short=12 HEAD`; `None` outside a checkout, without
    /// `git`, or before the first commit.
    pub commit: Option<String>,
    /// The files to recompile on when they change (existing files only):
    /// `HEAD`; when HEAD names a branch, the branch's loose ref file, or,
    /// when it has none (after `git pack-refs`), `packed-refs` and HEAD's
    /// reflog `logs/HEAD` (the next commit writes a loose ref file that is
    /// not watched yet, and appends to the reflog).
    pub watched: Vec<PathBuf>,
}

impl Checkout {
    /// The checkout holding `dir` (none: no commit, nothing watched).
    pub fn find(dir: &Path) -> Self {
        Self {
            commit: git(dir, &["rev-parse", "--short=12", "HEAD"]),
            watched: watched_files(dir),
        }
    }
}

/// The files of [`Checkout::watched`].
fn watched_files(dir: &Path) -> Vec<PathBuf> {
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    let mut names = vec!["HEAD"];
    if let Some(branch) = &branch {
        names.extend([branch.as_str(), "packed-refs", "logs/HEAD"]);
    }
    let mut args = vec!["rev-parse"];
    for name in &names {
        args.extend(["--git-path", name]);
    }
    let Some(paths) = git(dir, &args) else {
        return Vec::new();
    };
    // Relative paths are relative to `dir` (where git ran).
    let paths: Vec<PathBuf> = paths.lines().map(|p| dir.join(p)).collect();
    if paths.len() != names.len() {
        return Vec::new();
    }
    let chosen: &[usize] = match branch {
        None => &[0],
        Some(_) if paths[1].is_file() => &[0, 1],
        Some(_) => &[0, 2, 3],
    };
    chosen
        .iter()
        .map(|&i| paths[i].clone())
        .filter(|p| p.is_file())
        .collect()
}

/// Runs `git -C dir ARGS`: its trimmed standard output when it succeeds
/// and says something.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `git ARGS` in `dir` with no user or system configuration; panics on
    /// failure. Returns the standard output, trimmed.
    fn run(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.org")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A repository (`main/`, branch `main`) with one commit, and a
    /// worktree `wt/` of it on the new branch `topic/x` (a ref name with a
    /// directory in it).
    fn repo_and_worktree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (main, wt) = (root.join("main"), root.join("wt"));
        std::fs::create_dir(&main).unwrap();
        run(&main, &["init", "-q", "-b", "main"]);
        run(&main, &["commit", "-q", "--allow-empty", "-m", "one"]);
        run(&main, &["worktree", "add", "-q", "-b", "topic/x", "../wt"]);
        (tmp, main, wt)
    }

    /// The 12-digit prefix of the commit `git log` shows at `dir`.
    fn head_commit(dir: &Path) -> Option<String> {
        Some(run(dir, &["log", "-1", "--format=%H"])[..12].to_string())
    }

    fn canonical(paths: &[PathBuf]) -> Vec<PathBuf> {
        paths.iter().map(|p| p.canonicalize().unwrap()).collect()
    }

    #[test]
    fn a_worktree_watches_its_head_and_the_branch_in_the_common_dir() {
        let (_tmp, main, wt) = repo_and_worktree();
        let own = main.join(".git/worktrees/wt");
        let found = Checkout::find(&wt);
        assert_eq!(found.commit, head_commit(&wt));
        assert_eq!(
            canonical(&found.watched),
            [own.join("HEAD"), main.join(".git/refs/heads/topic/x")]
        );
        // The main checkout watches its own HEAD and branch.
        let found = Checkout::find(&main);
        assert_eq!(
            canonical(&found.watched),
            [main.join(".git/HEAD"), main.join(".git/refs/heads/main")]
        );
    }

    #[test]
    fn a_packed_branch_is_watched_through_packed_refs_and_the_reflog() {
        let (_tmp, main, wt) = repo_and_worktree();
        let own = main.join(".git/worktrees/wt");
        run(&wt, &["pack-refs", "--all"]);
        let loose = main.join(".git/refs/heads/topic/x");
        assert!(!loose.exists(), "pack-refs removed the loose ref");
        let found = Checkout::find(&wt);
        assert_eq!(found.commit, head_commit(&wt));
        assert_eq!(
            canonical(&found.watched),
            [
                own.join("HEAD"),
                main.join(".git/packed-refs"),
                own.join("logs/HEAD")
            ]
        );
        // A commit now writes a loose ref, which was not watched, and
        // appends to the reflog, which was.
        let reflog = std::fs::read(own.join("logs/HEAD")).unwrap();
        let before = found.commit;
        run(&wt, &["commit", "-q", "--allow-empty", "-m", "two"]);
        assert_ne!(std::fs::read(own.join("logs/HEAD")).unwrap(), reflog);
        let found = Checkout::find(&wt);
        assert_ne!(found.commit, before);
        assert_eq!(found.commit, head_commit(&wt));
        assert_eq!(canonical(&found.watched), [own.join("HEAD"), loose]);
    }

    #[test]
    fn a_detached_head_watches_head_alone() {
        let (_tmp, main, _wt) = repo_and_worktree();
        run(&main, &["checkout", "-q", "--detach"]);
        let found = Checkout::find(&main);
        assert_eq!(found.commit, head_commit(&main));
        assert_eq!(canonical(&found.watched), [main.join(".git/HEAD")]);
    }

    #[test]
    fn outside_a_checkout_nothing_is_known_or_watched() {
        let tmp = tempfile::tempdir().unwrap();
        let found = Checkout::find(tmp.path());
        assert_eq!(found.commit, None);
        assert!(found.watched.is_empty());
    }
}
