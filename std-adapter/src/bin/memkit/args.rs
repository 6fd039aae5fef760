//! The command line, parsed by hand: `memkit <command> [--flag value | --flag=value | --switch]`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use memkit_dummy::Preset;

/// Printed by `memkit help` and after a usage error.
pub const USAGE: &str = "\
memkit: GPU memory management for Rust engines, shown on a simulated or a real device

usage: memkit <command> [options]

commands:
  demo     a renderer-like upload workload, verified byte for byte, then a report
  probe    the device's memory types, heaps, budgets and limits
  bench    CPU cost per upload, and the coordinator against a naive and a wgpu-style path
  help     this text (also -h or --help, before or after a command)

options:
  --device D      dummy:<preset> (presets: discrete, rebar, integrated, lavapipe, mobile)
                  or vulkan (the best Vulkan device on this machine); default dummy:discrete
  --frames N      demo: frames to run, 1 to 1000000000 (default 240)
  --threads N     demo: producer threads uploading beside the frame loop, 0 to 256 (default 4)
  --seed S        demo, bench: seed of the generated sizes, offsets and bytes (default 1)
  --json PATH     demo, probe, bench: also write the report as JSON to PATH (opened first)
  --svg PATH      demo: also draw the memory map (every memory object and where its live
                  allocations sit) at the end of the workload as SVG to PATH (opened first)
  --map-json PATH demo: also write that memory map as JSON to PATH, for tools: every block
                  with its live ranges (offset, bytes) and free gaps, every dedicated
                  allocation, totals (opened first)
  --quick         bench: fewer repetitions and uploads
  --validation    vulkan: enable the Khronos validation layer (fails when not installed)
";

/// Which device a command runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// memkit-dummy, with a preset's memory types, heaps and limits.
    Dummy(Preset),
    /// memkit-vulkan's headless device on the best physical device.
    Vulkan,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dummy(p) => write!(f, "dummy:{p}"),
            Self::Vulkan => f.write_str("vulkan"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = ArgError;

    fn from_str(s: &str) -> Result<Self, ArgError> {
        match s {
            "vulkan" => Ok(Self::Vulkan),
            "dummy" => Ok(Self::Dummy(Preset::Discrete)),
            _ => match s.strip_prefix("dummy:") {
                Some(name) => name
                    .parse()
                    .map(Self::Dummy)
                    .map_err(|e| ArgError(format!("--device {s}: {e}"))),
                None => Err(ArgError(format!(
                    "--device {s}: expected dummy:<preset> or vulkan"
                ))),
            },
        }
    }
}

/// The subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `memkit demo`.
    Demo,
    /// `memkit probe`.
    Probe,
    /// `memkit bench`.
    Bench,
    /// `memkit help`, `-h`, `--help`, or no command.
    Help,
}

/// Everything the command line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The subcommand.
    pub command: Command,
    /// The device.
    pub device: DeviceChoice,
    /// Frames of the demo.
    pub frames: u64,
    /// Producer threads of the demo.
    pub threads: usize,
    /// Seed of everything generated.
    pub seed: u64,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// Where to draw the demo's memory map (SVG).
    pub svg: Option<PathBuf>,
    /// Where to write the demo's memory map as JSON.
    pub map_json: Option<PathBuf>,
    /// Short benchmark.
    pub quick: bool,
    /// Vulkan validation layer.
    pub validation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            command: Command::Help,
            device: DeviceChoice::Dummy(Preset::Discrete),
            frames: 240,
            threads: 4,
            seed: 1,
            json: None,
            svg: None,
            map_json: None,
            quick: false,
            validation: false,
        }
    }
}

/// A command line that does not parse; the message says which argument and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

/// The most demo frames (a billion: days of running), so that the demo's job and progress counts
/// cannot overflow.
pub const MAX_FRAMES: u64 = 1_000_000_000;
/// The most demo producer threads (each holds its own buffers and a 16 MiB upload source).
pub const MAX_THREADS: usize = 256;

/// `value` as a number in `[min, max]`.
fn number<T>(flag: &str, value: &str, min: T, max: T) -> Result<T, ArgError>
where
    T: FromStr + PartialOrd + fmt::Display,
{
    match value.parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        Ok(_) => Err(ArgError(format!("{flag} {value}: from {min} to {max}"))),
        Err(_) => Err(ArgError(format!("{flag} {value}: not a number"))),
    }
}

/// `arg` split into its flag and the value after `=` (`--flag=value`), if any. The flag must be
/// UTF-8 (every flag is); the value stays an OS string, for `--json` takes any path the OS does.
fn split_flag(arg: &OsStr) -> Result<(String, Option<OsString>), ArgError> {
    let bytes = arg.as_encoded_bytes();
    let (flag, value) = match bytes.iter().position(|&b| b == b'=') {
        Some(eq) => (&bytes[..eq], Some(&bytes[eq + 1..])),
        None => (bytes, None),
    };
    let flag = std::str::from_utf8(flag)
        .map_err(|_| ArgError(format!("unknown option {}", arg.to_string_lossy())))?;
    Ok((flag.to_owned(), value.map(os_string_from).transpose()?))
}

/// The OS string of `bytes`, which followed an ASCII `=` in an OS string's encoded bytes.
#[cfg(unix)]
fn os_string_from(bytes: &[u8]) -> Result<OsString, ArgError> {
    use std::os::unix::ffi::OsStrExt as _;
    Ok(OsStr::from_bytes(bytes).to_owned())
}

/// The OS string of `bytes`, which followed an ASCII `=` in an OS string's encoded bytes; only
/// UTF-8 is taken apart safely here (`--flag VALUE` takes any value).
#[cfg(not(unix))]
fn os_string_from(bytes: &[u8]) -> Result<OsString, ArgError> {
    std::str::from_utf8(bytes)
        .map(OsString::from)
        .map_err(|_| ArgError("a value that is not valid UTF-8 needs --flag VALUE".to_owned()))
}

/// `value` of `flag` as UTF-8 (every value but the report paths of `--json`, `--svg` and
/// `--map-json` is a name or a number).
fn utf8(flag: &str, value: OsString) -> Result<String, ArgError> {
    value
        .into_string()
        .map_err(|v| ArgError(format!("{flag} {}: not valid UTF-8", v.to_string_lossy())))
}

impl Options {
    /// Parses the arguments after the program name (`std::env::args_os`: an argument need not
    /// be UTF-8; only the report paths of `--json`, `--svg` and `--map-json` may be other than
    /// UTF-8, anywhere else that is an error).
    pub fn parse<I, S>(args: I) -> Result<Self, ArgError>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut options = Self::default();
        let mut command = None;
        // `-h`/`--help` anywhere, before or after a command, asks for the help.
        let mut help = false;
        // Whether `help` was followed by a command already.
        let mut help_topic = false;
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            if !arg.as_encoded_bytes().starts_with(b"-") {
                // `help demo`: a command after `help` names what to help with.
                let after_help = command == Some(Command::Help) && !help_topic;
                if command.is_some() && !after_help {
                    return Err(ArgError(format!(
                        "unexpected argument {:?}",
                        arg.to_string_lossy()
                    )));
                }
                let named = match arg.to_str() {
                    Some("demo") => Command::Demo,
                    Some("probe") => Command::Probe,
                    Some("bench") => Command::Bench,
                    Some("help") => Command::Help,
                    _ => {
                        return Err(ArgError(format!(
                            "unknown command {:?}",
                            arg.to_string_lossy()
                        )));
                    }
                };
                if after_help {
                    help_topic = true;
                } else {
                    command = Some(named);
                }
                continue;
            }
            // `--flag=value` or `--flag value`.
            let (flag, inline) = split_flag(&arg)?;
            let has_inline = inline.is_some();
            let mut inline = inline;
            let mut os_value = || -> Result<OsString, ArgError> {
                match inline.take() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| ArgError(format!("{flag} needs a value"))),
                }
            };
            let mut value = || utf8(&flag, os_value()?);
            match flag.as_str() {
                "-h" | "--help" => help = true,
                "--device" => options.device = value()?.parse()?,
                "--frames" => options.frames = number("--frames", &value()?, 1, MAX_FRAMES)?,
                "--threads" => {
                    options.threads = number("--threads", &value()?, 0, MAX_THREADS)?;
                }
                "--seed" => options.seed = number("--seed", &value()?, 0, u64::MAX)?,
                "--json" => options.json = Some(PathBuf::from(os_value()?)),
                "--svg" => options.svg = Some(PathBuf::from(os_value()?)),
                "--map-json" => options.map_json = Some(PathBuf::from(os_value()?)),
                "--quick" | "--validation" if has_inline => {
                    return Err(ArgError(format!("{flag} takes no value")));
                }
                "--quick" => options.quick = true,
                "--validation" => options.validation = true,
                _ => return Err(ArgError(format!("unknown option {flag}"))),
            }
        }
        options.command = if help {
            Command::Help
        } else {
            command.unwrap_or(Command::Help)
        };
        if matches!(options.command, Command::Probe | Command::Bench) {
            for (flag, given) in [
                ("--svg", options.svg.is_some()),
                ("--map-json", options.map_json.is_some()),
            ] {
                if given {
                    return Err(ArgError(format!(
                        "{flag}: only demo reports a memory map (probe and bench hold no workload)"
                    )));
                }
            }
        }
        Ok(options)
    }
}
