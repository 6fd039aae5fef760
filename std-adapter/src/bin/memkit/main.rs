//! The `memkit` command: `memkit demo`, `memkit probe`, `memkit bench` on the simulated device
//! (`--device dummy:<preset>`, the default) or on Vulkan (`--device vulkan`). `memkit help` says
//! more.

mod application;
mod args;
mod backend;
mod bench;
mod clock;
mod demo;
mod probe;
mod render_targets;
mod report;
mod rng;
mod vulkan;

use std::error::Error;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use memkit_dummy::DummyDevice;
use memkit_std::CoordinatorConfig;

use crate::args::{Command, DeviceChoice, Options, USAGE};
use crate::backend::Backend;
use memkit_vulkan::SharedHeadlessDevice;

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args_os().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("memkit: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Before any work: a path that cannot be written fails now, not after minutes of running.
    let mut reports = match Reports::open(&options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("memkit: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&options, &mut reports) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("memkit: {e}");
            for file in [reports.json, reports.svg, reports.map_json]
                .into_iter()
                .flatten()
            {
                file.discard();
            }
            ExitCode::FAILURE
        }
    }
}

/// The report files the command line asked for, opened before the run.
struct Reports {
    /// `--json`.
    json: Option<ReportFile>,
    /// `--svg` (demo only).
    svg: Option<ReportFile>,
    /// `--map-json` (demo only).
    map_json: Option<ReportFile>,
}

impl Reports {
    /// Opens every report file the command line names, in order; when one cannot be opened,
    /// the ones this run made before it are removed again (a failure leaves nothing behind).
    fn open(options: &Options) -> Result<Self, Box<dyn Error>> {
        let mut opened: Vec<Option<ReportFile>> = Vec::with_capacity(3);
        for path in [&options.json, &options.svg, &options.map_json] {
            match ReportFile::open(path.as_ref(), options) {
                Ok(file) => opened.push(file),
                Err(e) => {
                    for file in opened.iter().flatten() {
                        file.remove_if_created();
                    }
                    return Err(e);
                }
            }
        }
        let mut opened = opened.into_iter();
        let mut next = || opened.next().flatten();
        Ok(Self {
            json: next(),
            svg: next(),
            map_json: next(),
        })
    }
}

/// A file a report goes to (`--json`, `--svg`, `--map-json`), opened before the run.
struct ReportFile {
    file: File,
    path: PathBuf,
    /// Made by this run (an existing file is kept as it was until the report replaces it).
    created: bool,
}

impl ReportFile {
    /// Opens (or creates) `path`, for a command that writes a report.
    fn open(path: Option<&PathBuf>, options: &Options) -> Result<Option<Self>, Box<dyn Error>> {
        let Some(path) = path else {
            return Ok(None);
        };
        if options.command == Command::Help {
            return Ok(None);
        }
        let opened = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(|file| (file, true))
            .or_else(|e| match e.kind() {
                ErrorKind::AlreadyExists => OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map(|f| (f, false)),
                _ => Err(e),
            });
        match opened {
            Ok((file, created)) => Ok(Some(Self {
                file,
                path: path.clone(),
                created,
            })),
            Err(e) => Err(format!("writing {}: {e}", path.display()).into()),
        }
    }

    /// Replaces the file's contents with `report` and a newline.
    fn write(&mut self, report: &str) -> Result<(), Box<dyn Error>> {
        let mut write = || -> std::io::Result<()> {
            // A regular file is cut to the report; a pipe or terminal (`/dev/stdout`) cannot be.
            if self.file.metadata()?.is_file() {
                self.file.set_len(0)?;
                self.file.seek(SeekFrom::Start(0))?;
            }
            self.file.write_all(report.as_bytes())?;
            if !report.ends_with('\n') {
                self.file.write_all(b"\n")?;
            }
            self.file.flush()
        };
        write().map_err(|e| format!("writing {}: {e}", self.path.display()).into())
    }

    /// After a failed run: removes the file if this run made it (it is empty), so a failure
    /// leaves nothing behind; an existing file keeps its contents.
    fn discard(self) {
        self.remove_if_created();
    }

    /// Removes the file if this run made it.
    fn remove_if_created(&self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn run(options: &Options, reports: &mut Reports) -> Result<ExitCode, Box<dyn Error>> {
    let json = &mut reports.json;
    match (options.command, options.device) {
        (Command::Help, _) => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        (Command::Demo, DeviceChoice::Dummy(preset)) => {
            demo(DummyDevice::with_preset(preset), options, reports)
        }
        (Command::Demo, DeviceChoice::Vulkan) => demo(vulkan(options)?, options, reports),
        (Command::Probe, DeviceChoice::Dummy(preset)) => {
            let device = DummyDevice::with_preset(preset);
            print!("{}", probe::text(&device.describe(), &device));
            write_json(json, &probe::json(&device.describe(), &device))?;
            Ok(ExitCode::SUCCESS)
        }
        (Command::Probe, DeviceChoice::Vulkan) => {
            let device = vulkan(options)?;
            let report = device.device().probe()?;
            print!("{report}");
            write_json(json, &probe::json(&device.describe(), &device))?;
            Ok(ExitCode::SUCCESS)
        }
        (Command::Bench, DeviceChoice::Dummy(preset)) => {
            bench(&|| Ok(DummyDevice::with_preset(preset)), options, json)
        }
        (Command::Bench, DeviceChoice::Vulkan) => bench(&|| vulkan(options), options, json),
    }
}

fn vulkan(options: &Options) -> Result<SharedHeadlessDevice, Box<dyn Error>> {
    vulkan::shared_device(options.validation)
        .map_err(|e| format!("--device vulkan: {e} (try --device dummy:discrete)").into())
}

fn write_json(out: &mut Option<ReportFile>, json: &str) -> Result<(), Box<dyn Error>> {
    match out {
        Some(out) => out.write(json),
        None => Ok(()),
    }
}

fn demo<D: Backend>(
    device: D,
    options: &Options,
    reports: &mut Reports,
) -> Result<ExitCode, Box<dyn Error>> {
    let report = demo::run(
        device,
        CoordinatorConfig::default(),
        demo::DemoOptions {
            frames: options.frames,
            threads: options.threads,
            seed: options.seed,
            progress: true,
        },
    )?;
    print!("{}", report::demo_text(&report));
    write_json(&mut reports.json, &report::demo_json(&report))?;
    if let Some(svg) = &mut reports.svg {
        svg.write(&report.memory_map_svg)?;
    }
    if let Some(map_json) = &mut reports.map_json {
        map_json.write(&report.memory_map_json)?;
    }
    if report.verification.passed() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("memkit demo: verification failed (see the report above)");
        Ok(ExitCode::FAILURE)
    }
}

fn bench<D: Backend>(
    make: &dyn Fn() -> Result<D, bench::BenchError>,
    options: &Options,
    json: &mut Option<ReportFile>,
) -> Result<ExitCode, Box<dyn Error>> {
    if cfg!(debug_assertions) {
        eprintln!(
            "memkit bench: this is a debug build; measure with \
             cargo run --release -p memkit-std --features cli -- bench"
        );
    }
    let report = bench::run(
        make,
        bench::BenchOptions {
            quick: options.quick,
            seed: options.seed,
        },
    )?;
    print!("{}", bench::text(&report));
    write_json(json, &bench::json(&report))?;
    Ok(ExitCode::SUCCESS)
}
