//! `sluicectl tune check|apply`: OS tuning for low latency, in the manner of
//! `rpk redpanda tune`. `check` reads each setting (CPU governor, clocksource, THP, IRQ
//! affinity, block devices, sysctls, limits, ballast file), compares it with the profile
//! compiled in from `tuning/` and prints a verdict; it changes nothing and needs no
//! privileges. `apply` makes every change `check` asks for (root), or prints them as shell
//! commands with `--dry-run`. Every path is read under `--root` (default `/`), so tests
//! run the real binary against a fake /proc and /sys.
//!
//! Exit codes: 0 when the check ran (tuned or not); 3 with `check --strict` when
//! settings need changing; 1 on errors (apply without root, a change that failed).
mod checks;
mod profile;
mod sys;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use checks::{Finding, Fix, Status};
use sys::Root;

/// Exit code of `tune check --strict` when settings need changing.
pub const EXIT_NOT_TUNED: i32 = 3;

#[derive(Subcommand)]
pub enum TuneCmd {
    /// Show each setting's current and recommended value and why; changes nothing.
    Check {
        #[command(flatten)]
        target: TargetArgs,
        /// Exit with status 3 when any setting needs changing (for scripts and CI).
        #[arg(long)]
        strict: bool,
    },
    /// Make every change `tune check` asks for (needs root), or print them with --dry-run.
    Apply {
        #[command(flatten)]
        target: TargetArgs,
        /// Print the shell commands instead of running them; changes nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args)]
pub struct TargetArgs {
    /// The broker's cores, as a cpu list like 0-3,6 (default: every online core). NIC and
    /// NVMe IRQs should go to the other cores.
    #[arg(long, value_name = "LIST", value_parser = parse_cores)]
    cores: Option<sys::Cores>,
    /// The broker's log.dirs, where the ballast file goes (repeatable).
    #[arg(long = "log-dir", value_name = "DIR", default_value = "./sluice-data")]
    log_dirs: Vec<PathBuf>,
    /// Size of the ballast file, in bytes or with a K/M/G suffix (binary units; default
    /// from tuning/profiles/latency.toml: 1G).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    ballast_size: Option<u64>,
    /// Directory that stands for `/`: /proc and /sys are read (and written) under it, and
    /// absolute --log-dir paths too. For tests and for checking a mounted system image.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
}

fn parse_cores(s: &str) -> Result<sys::Cores, String> {
    let cores = sys::parse_cpu_list(s)?;
    if cores.is_empty() {
        return Err("empty core list".into());
    }
    Ok(cores)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = num.parse().map_err(|_| format!("bad size '{s}' (bytes, or a number with K, M or G)"))?;
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(|| format!("bad size '{s}'"))
}

pub fn run(cli: &crate::Cli, cmd: &TuneCmd) -> Result<(), String> {
    match cmd {
        TuneCmd::Check { target, strict } => check(cli, target, *strict),
        TuneCmd::Apply { target, dry_run } => apply(target, *dry_run),
    }
}

/// Runs every check against the target.
fn findings(args: &TargetArgs) -> Result<(Root, Vec<Finding>), String> {
    let profile = profile::load()?;
    let root = Root::new(&args.root);
    if !root.path("/").is_dir() {
        return Err(format!("--root {}: not a directory", args.root.display()));
    }
    let online = sys::online_cores(&root);
    let target = checks::Target {
        root: &root,
        profile: &profile,
        broker_cores: args.cores.clone().unwrap_or_else(|| online.clone()),
        broker_cores_default: args.cores.is_none(),
        log_dirs: &args.log_dirs,
        ballast_bytes: args.ballast_size.unwrap_or(profile.ballast_bytes),
    };
    let found = checks::all(&target);
    Ok((root, found))
}

fn verdict(changes: usize) -> String {
    match changes {
        0 => "verdict: tuned".to_string(),
        1 => "verdict: 1 setting to change".to_string(),
        n => format!("verdict: {n} settings to change"),
    }
}

fn check(cli: &crate::Cli, args: &TargetArgs, strict: bool) -> Result<(), String> {
    let (_, found) = findings(args)?;
    let changes = found.iter().filter(|f| f.status == Status::Change).count();
    if cli.json {
        let settings: Vec<_> = found
            .iter()
            .map(|f| {
                json!({
                    "setting": f.setting,
                    "current": f.current,
                    "recommended": f.recommended,
                    "status": f.status.as_str(),
                    "why": f.why,
                })
            })
            .collect();
        let verdict = if changes == 0 { "tuned" } else { "not tuned" };
        crate::util::print_json(&json!({ "settings": settings, "changes": changes, "verdict": verdict }));
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|f| {
                let why = f.why.split_whitespace().collect::<Vec<_>>().join(" ");
                vec![f.setting.clone(), f.current.clone(), f.recommended.clone(), f.status.as_str().into(), why]
            })
            .collect();
        crate::util::print_table(&["SETTING", "CURRENT", "RECOMMENDED", "STATUS", "WHY"], &rows);
        println!("{}", verdict(changes));
        if changes > 0 {
            println!("run `sluicectl tune apply --dry-run` to see the commands, `sudo sluicectl tune apply` to apply");
        }
    }
    if strict && changes > 0 {
        let _ = std::io::stdout().flush();
        std::process::exit(EXIT_NOT_TUNED);
    }
    Ok(())
}

/// The shell command that makes `fix` (for `--dry-run` and the apply log).
fn shell(root: &Root, fix: &Fix) -> String {
    let path = |abs: &str| sys::shell_quote(&root.path(abs).to_string_lossy());
    match fix {
        Fix::Write { path: p, value } => format!("echo {} > {}", sys::shell_quote(value), path(p)),
        Fix::Sysctl { key, value } if root.is_real() => {
            format!("sysctl -w {}", sys::shell_quote(&format!("{key}={value}")))
        }
        Fix::Sysctl { key, value } => {
            format!("echo {} > {}", sys::shell_quote(value), path(&format!("/proc/sys/{}", key.replace('.', "/"))))
        }
        Fix::Ballast { path, bytes } => format!("fallocate -l {bytes} {}", sys::shell_quote(&path.to_string_lossy())),
        Fix::Manual(advice) => format!("# {advice}"),
    }
}

fn apply(args: &TargetArgs, dry_run: bool) -> Result<(), String> {
    let (root, found) = findings(args)?;
    let changes: Vec<&Finding> = found.iter().filter(|f| f.status == Status::Change).collect();
    if changes.is_empty() {
        println!("nothing to change");
        println!("{}", verdict(0));
        return Ok(());
    }
    if dry_run {
        let n = changes.len();
        println!("# sluicectl tune apply --dry-run: {n} setting(s) to change; nothing was changed");
        for f in &changes {
            println!("# {}: {} -> {}", f.setting, f.current, f.recommended);
            for fix in &f.fixes {
                println!("{}", shell(&root, fix));
            }
        }
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if root.is_real() && unsafe { libc::geteuid() } != 0 {
        return Err("tune apply changes kernel settings and needs root: run it with sudo, \
                    or use --dry-run to print the commands"
            .into());
    }
    let (mut applied, mut manual, mut failed) = (0, 0, 0);
    for f in &changes {
        for fix in &f.fixes {
            let cmd = shell(&root, fix);
            match fix {
                Fix::Manual(advice) => {
                    manual += 1;
                    println!("manual   {}: {advice}", f.setting);
                }
                _ => match apply_fix(&root, fix) {
                    Ok(()) => {
                        applied += 1;
                        println!("applied  {}: {cmd}", f.setting);
                    }
                    Err(e) => {
                        failed += 1;
                        println!("FAILED   {}: {cmd}: {e}", f.setting);
                    }
                },
            }
        }
    }
    println!("{applied} applied, {manual} to set by hand, {failed} failed");
    if root.is_real() && applied > 0 {
        // sysfs and procfs writes last until the next boot.
        println!(
            "these changes last until reboot: install tuning/sysctl.d/90-sluice.conf in /etc/sysctl.d \
             and tuning/systemd/sluice.service, and rerun `sluicectl tune apply` at boot for the rest"
        );
    }
    if failed > 0 {
        return Err(format!("{failed} change(s) failed (see above)"));
    }
    Ok(())
}

fn apply_fix(root: &Root, fix: &Fix) -> Result<(), String> {
    match fix {
        Fix::Write { path, value } => write_existing(&root.path(path), value),
        Fix::Sysctl { key, value } => write_existing(&root.path(format!("/proc/sys/{}", key.replace('.', "/"))), value),
        Fix::Ballast { path, bytes } => preallocate(path, *bytes),
        Fix::Manual(_) => Ok(()),
    }
}

/// Writes a sysfs/procfs value the way `echo value > file` does. Never creates a file: a
/// setting that is missing was reported n/a and has no fix.
fn write_existing(path: &Path, value: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(path).map_err(|e| e.to_string())?;
    f.write_all(format!("{value}\n").as_bytes()).map_err(|e| e.to_string())
}

/// Allocates `bytes` of real blocks (not a sparse file, which would free nothing when
/// deleted).
fn preallocate(path: &Path, bytes: u64) -> Result<(), String> {
    let f =
        std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(path).map_err(|e| e.to_string())?;
    let len = libc::off_t::try_from(bytes).map_err(|_| format!("ballast size {bytes} is too large"))?;
    // SAFETY: fallocate on a file descriptor owned by `f` for the duration of the call.
    if unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) } != 0 {
        return Err(format!("fallocate: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}
