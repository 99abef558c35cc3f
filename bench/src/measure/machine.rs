//! Where and when a result was measured, and with which command: the `machine`, `date` and
//! `command` fields of a results row.

use std::time::SystemTime;

/// CPU model and logical core count from `/proc/cpuinfo`, e.g. `AMD EPYC 7B13 (2 cores)`;
/// falls back to the architecture and the cores the OS reports.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let listed = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let cores = if listed > 0 { listed } else { cores };
    format!("{model} ({cores} cores)")
}

/// Now, as an RFC 3339 UTC timestamp to the second (`2025-11-22T16:04:05Z`).
pub fn now_iso() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// The command line that produced a result, as a shell would re-run it: the program's file
/// name followed by the arguments, quoted where needed.
pub fn command_line(args: &[String]) -> String {
    let mut out = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let arg = if i == 0 {
            std::path::Path::new(arg)
                .file_name()
                .map_or_else(|| arg.clone(), |n| n.to_string_lossy().into_owned())
        } else {
            arg.clone()
        };
        out.push(shell_quote(&arg));
    }
    out.join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_names_the_program_and_quotes_odd_arguments() {
        let args = [
            "/x/target/release/sluice-bench",
            "run",
            "--workload",
            "q0,q5",
            "it's",
        ]
        .map(String::from);
        assert_eq!(
            command_line(&args),
            r"sluice-bench run --workload q0,q5 'it'\''s'"
        );
    }

    #[test]
    fn machine_names_cores_and_date_is_utc() {
        assert!(machine().ends_with("cores)"));
        let date = now_iso();
        assert!(date.ends_with('Z') && date.len() == 20, "{date}");
    }
}
