//! The `memkit` command: `memkit demo`, `memkit probe`, `memkit bench` on the simulated device
//! (`--device dummy:<preset>`, the default) or on Vulkan (`--device vulkan`). `memkit help` says
//! more.

mod args;
mod backend;
mod bench;
mod clock;
mod demo;
mod probe;
mod report;
mod rng;
mod vulkan;

use std::error::Error;
use std::path::Path;
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
    match run(&options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("memkit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<ExitCode, Box<dyn Error>> {
    match (options.command, options.device) {
        (Command::Help, _) => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        (Command::Demo, DeviceChoice::Dummy(preset)) => {
            demo(DummyDevice::with_preset(preset), options)
        }
        (Command::Demo, DeviceChoice::Vulkan) => demo(vulkan(options)?, options),
        (Command::Probe, DeviceChoice::Dummy(preset)) => {
            let device = DummyDevice::with_preset(preset);
            print!("{}", probe::text(&device.describe(), &device));
            write_json(options, &probe::json(&device.describe(), &device))?;
            Ok(ExitCode::SUCCESS)
        }
        (Command::Probe, DeviceChoice::Vulkan) => {
            let device = vulkan(options)?;
            let report = device.device().probe()?;
            print!("{report}");
            write_json(options, &probe::json(&device.describe(), &device))?;
            Ok(ExitCode::SUCCESS)
        }
        (Command::Bench, DeviceChoice::Dummy(preset)) => {
            bench(&|| Ok(DummyDevice::with_preset(preset)), options)
        }
        (Command::Bench, DeviceChoice::Vulkan) => bench(&|| vulkan(options), options),
    }
}

fn vulkan(options: &Options) -> Result<SharedHeadlessDevice, Box<dyn Error>> {
    vulkan::shared_device(options.validation)
        .map_err(|e| format!("--device vulkan: {e} (try --device dummy:discrete)").into())
}

fn write_json(options: &Options, json: &str) -> Result<(), Box<dyn Error>> {
    if let Some(path) = &options.json {
        write_file(path, json)?;
    }
    Ok(())
}

fn write_file(path: &Path, json: &str) -> Result<(), Box<dyn Error>> {
    std::fs::write(path, format!("{json}\n"))
        .map_err(|e| format!("writing {}: {e}", path.display()).into())
}

fn demo<D: Backend>(device: D, options: &Options) -> Result<ExitCode, Box<dyn Error>> {
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
    write_json(options, &report::demo_json(&report))?;
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
    write_json(options, &bench::json(&report))?;
    Ok(ExitCode::SUCCESS)
}
