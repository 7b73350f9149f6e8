//! The flags every binary has (`--quiet`) and the stderr logger they set.

use std::fmt;
use std::io::{IsTerminal, Write};

/// Flags shared by every binary; add them with `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct CommonFlags {
    /// Print no progress or notes on standard error (warnings and errors
    /// still appear). Colours follow NO_COLOR and whether stderr is a terminal.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
}

impl CommonFlags {
    /// The logger these flags ask for (colour as [`color_allowed`] says).
    pub fn log(&self) -> Log {
        Log {
            quiet: self.quiet,
            color: color_allowed(),
        }
    }
}

/// Whether standard error may be coloured: it is a terminal and the
/// `NO_COLOR` environment variable is unset or empty (see no-color.org).
pub fn color_allowed() -> bool {
    no_color_unset(std::env::var_os("NO_COLOR").as_deref()) && std::io::stderr().is_terminal()
}

/// `NO_COLOR` asks for no colour when it is set to anything but "".
fn no_color_unset(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_none_or(|v| v.is_empty())
}

/// The flags defined more than once in one (sub)command of `command`: the
/// same id, long or short name (`"bench: --proposals"`). clap checks this
/// only in builds with debug assertions and otherwise takes the first, so
/// each binary's tests ask this in release builds too.
pub fn duplicate_flags(command: &clap::Command) -> Vec<String> {
    let mut command = command.clone();
    command.build();
    let mut found = Vec::new();
    collect_duplicates(&command, &mut found);
    found
}

/// For each binary's tests: panics when a flag is defined twice in one
/// subcommand of `command` ([`duplicate_flags`]), then runs clap's own
/// checks (which do something only where debug assertions are on).
pub fn assert_command_line_well_formed(command: clap::Command) {
    assert_eq!(duplicate_flags(&command), Vec::<String>::new());
    command.debug_assert();
}

fn collect_duplicates(command: &clap::Command, found: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    for arg in command.get_arguments() {
        let names = [
            Some(format!("id {}", arg.get_id())),
            arg.get_long().map(|l| format!("--{l}")),
            arg.get_short().map(|s| format!("-{s}")),
        ];
        for name in names.into_iter().flatten() {
            if !seen.insert(name.clone()) {
                found.push(format!("{}: {name}", command.get_name()));
            }
        }
    }
    for sub in command.get_subcommands() {
        collect_duplicates(sub, found);
    }
}

/// Messages to standard error: progress and notes (silenced by `--quiet`),
/// warnings and errors (always). Failures to write them are ignored: a
/// closed stderr must not stop a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Log {
    /// Silence progress and notes.
    pub quiet: bool,
    /// Colour the `warning:` and `error:` prefixes.
    pub color: bool,
}

impl Log {
    /// A progress line or note (not with `--quiet`).
    pub fn info(&self, message: impl fmt::Display) {
        if !self.quiet {
            self.line("", "", message);
        }
    }

    /// A warning, prefixed `warning: ` (yellow on a terminal).
    pub fn warn(&self, message: impl fmt::Display) {
        self.line("warning: ", "\x1b[33m", message);
    }

    /// An error, prefixed `error: ` (red on a terminal).
    pub fn error(&self, message: impl fmt::Display) {
        self.line("error: ", "\x1b[31m", message);
    }

    /// The text of one line as it is printed.
    pub fn format(&self, prefix: &str, color: &str, message: impl fmt::Display) -> String {
        if self.color && !prefix.is_empty() {
            format!("{color}{prefix}\x1b[0m{message}")
        } else {
            format!("{prefix}{message}")
        }
    }

    fn line(&self, prefix: &str, color: &str, message: impl fmt::Display) {
        let text = self.format(prefix, color, message);
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonFlags,
        #[arg(long)]
        other: bool,
    }

    #[test]
    fn quiet_flattens_into_a_command() {
        let cli = Cli::try_parse_from(["x", "--quiet", "--other"]).unwrap();
        assert!(cli.common.quiet && cli.other);
        assert!(Cli::try_parse_from(["x", "-q"]).unwrap().common.quiet);
        assert!(!Cli::try_parse_from(["x"]).unwrap().common.quiet);
    }

    #[test]
    fn no_color_rule() {
        use std::ffi::OsStr;
        assert!(no_color_unset(None));
        assert!(no_color_unset(Some(OsStr::new(""))));
        assert!(!no_color_unset(Some(OsStr::new("1"))));
    }

    #[test]
    fn prefixes_are_coloured_only_when_asked() {
        let plain = Log {
            quiet: false,
            color: false,
        };
        assert_eq!(plain.format("warning: ", "\x1b[33m", "x"), "warning: x");
        let coloured = Log {
            quiet: false,
            color: true,
        };
        assert_eq!(
            coloured.format("warning: ", "\x1b[33m", "x"),
            "\x1b[33mwarning: \x1b[0mx"
        );
        assert_eq!(coloured.format("", "", "progress"), "progress");
    }
}

#[cfg(test)]
mod duplicate_flag_tests {
    use super::duplicate_flags;
    use clap::{Arg, Command};

    #[test]
    fn a_flag_defined_twice_in_a_subcommand_is_found() {
        let twice = Command::new("tool").subcommand(
            Command::new("bench")
                .arg(Arg::new("proposals").long("proposals"))
                .arg(Arg::new("file").long("proposals"))
                .arg(Arg::new("count").short('n'))
                .arg(Arg::new("other").short('n')),
        );
        assert_eq!(duplicate_flags(&twice), ["bench: --proposals", "bench: -n"]);
        let fine = Command::new("tool")
            .arg(Arg::new("a").long("a"))
            .subcommand(Command::new("x").arg(Arg::new("a").long("a")));
        assert!(duplicate_flags(&fine).is_empty());
    }
}
