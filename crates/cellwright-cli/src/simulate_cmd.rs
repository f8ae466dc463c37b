//! `cellwright simulate MODEL …` and `cellwright simulate screen MODEL …`: cells from a
//! Boolean model's stochastic ODEs, written as .h5ad or .tsv with the ground-truth network.

use std::path::{Path, PathBuf};

use anyhow::Context;
use cellwright_core::CancelToken;
use cellwright_data::catalogue;
use cellwright_data::h5ad;
use cellwright_data::matrix::ExpressionMatrix;
use cellwright_data::text::write_table;
use cellwright_sim::{
    CountNoise, Design, Perturbation, Screen, Settings, SimError, Simulation, Simulator,
};
use clap::{Args, Subcommand, ValueEnum};

use crate::exit;
use crate::progress::{self, FetchBar};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SimulateArgs {
    #[command(subcommand)]
    command: Option<SimulateCommand>,
    /// A catalogue model (e.g. krumsiek_myeloid; `cellwright data info pyboolnet-models`) or a
    /// .bnet / Cell Collective .txt file.
    #[arg(required = true)]
    model: Option<String>,
    /// Cells to simulate.
    #[arg(long, default_value_t = 1000)]
    cells: usize,
    /// Genes to knock out (comma-separated).
    #[arg(long, value_delimiter = ',')]
    knockout: Vec<String>,
    /// Genes to overexpress (comma-separated).
    #[arg(long, value_delimiter = ',')]
    overexpress: Vec<String>,
    #[command(flatten)]
    common: Common,
    /// Output: .h5ad or .tsv (cells × genes); the network goes beside it as
    /// <stem>.network.tsv. Without it, a summary only.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SimulateCommand {
    /// A knockout screen: single and double knockouts sharing one control group.
    Screen(ScreenArgs),
}

#[derive(Debug, Args)]
struct ScreenArgs {
    /// A catalogue model or a model file.
    model: String,
    /// Genes knocked out one at a time: `all`, or a comma-separated list.
    #[arg(long, default_value = "all", value_delimiter = ',')]
    singles: Vec<String>,
    /// Double knockouts, drawn (seeded) from all pairs of the singles.
    #[arg(long, default_value_t = 0)]
    pairs: usize,
    #[arg(long, default_value_t = 100)]
    cells_per_perturbation: usize,
    /// Cells of the shared control group (default: as many as a perturbation).
    #[arg(long)]
    control_cells: Option<usize>,
    #[command(flatten)]
    common: Common,
    /// Directory for screen.h5ad and network.tsv.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DesignArg {
    SteadyState,
    Trajectory,
}

#[derive(Debug, Args)]
struct Common {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// steady-state: each cell at the end of its run; trajectory: at a time drawn along it.
    #[arg(long, value_enum, default_value = "steady-state")]
    design: DesignArg,
    /// Length of each trajectory, in protein lifetimes.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Write UMI counts (X, sparse) with the mRNA levels as layer `mrna`, instead of the
    /// levels alone.
    #[arg(long)]
    counts: bool,
    /// Mean UMIs of a fully-on gene (with --counts).
    #[arg(long, default_value_t = CountNoise::default().umis_at_max)]
    umis_at_max: f64,
}

impl Common {
    fn settings(&self) -> Settings {
        Settings {
            design: match self.design {
                DesignArg::SteadyState => Design::SteadyState,
                DesignArg::Trajectory => Design::Trajectory,
            },
            duration: self.duration,
            ..Settings::default()
        }
    }

    fn matrix(&self, sim: &Simulation) -> anyhow::Result<ExpressionMatrix> {
        Ok(if self.counts {
            sim.counts(&CountNoise {
                umis_at_max: self.umis_at_max,
                ..CountNoise::default()
            })?
        } else {
            sim.expression()?
        })
    }
}

pub fn run(args: SimulateArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    match args.command {
        Some(SimulateCommand::Screen(screen)) => run_screen(screen, cancel),
        None => {
            let model = args.model.context("a model is required")?;
            let simulator = simulator(&model, &args.common, cancel)?;
            let groups = [(
                Perturbation {
                    knockouts: args.knockout,
                    overexpressed: args.overexpress,
                },
                args.cells,
            )];
            let Some(sim) = simulate(&simulator, &groups, cancel)? else {
                return Ok(exit::CANCELLED);
            };
            let m = args.common.matrix(&sim)?;
            summarise(&sim, &m);
            if let Some(out) = args.out {
                let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned());
                let network =
                    out.with_file_name(format!("{}.network.tsv", stem.unwrap_or_default()));
                write_matrix(&m, &out)?;
                write_network(&sim, &network)?;
                println!("wrote {} and {}", out.display(), network.display());
            }
            Ok(0)
        }
    }
}

fn run_screen(args: ScreenArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let simulator = simulator(&args.model, &args.common, cancel)?;
    let singles = if args.singles.iter().any(|s| s == "all") {
        Vec::new()
    } else {
        args.singles
    };
    let groups = simulator.screen_groups(&Screen {
        singles,
        pairs: args.pairs,
        cells_per_perturbation: args.cells_per_perturbation,
        control_cells: args.control_cells,
    })?;
    let Some(sim) = simulate(&simulator, &groups, cancel)? else {
        return Ok(exit::CANCELLED);
    };
    let m = args.common.matrix(&sim)?;
    summarise(&sim, &m);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let (matrix, network) = (args.out.join("screen.h5ad"), args.out.join("network.tsv"));
    write_matrix(&m, &matrix)?;
    write_network(&sim, &network)?;
    println!("wrote {} and {}", matrix.display(), network.display());
    Ok(0)
}

fn simulator(model: &str, common: &Common, cancel: &CancelToken) -> anyhow::Result<Simulator> {
    let bar = FetchBar::new();
    let (net, source) = catalogue::boolean_model(model, &bar, cancel)?;
    bar.0.finish_and_clear();
    eprintln!("{source}: {} nodes, {} edges", net.len(), net.edges().len());
    Ok(Simulator::new(&net, common.settings(), common.seed)?)
}

/// The cells, with a progress line; `None` when cancelled.
fn simulate(
    simulator: &Simulator,
    groups: &[(Perturbation, usize)],
    cancel: &CancelToken,
) -> anyhow::Result<Option<Simulation>> {
    let result = progress::with_spinner(|shown| simulator.run(groups, shown, cancel));
    match result {
        Ok(sim) => Ok(Some(sim)),
        Err(SimError::Cancelled) => {
            eprintln!("cancelled");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn summarise(sim: &Simulation, m: &ExpressionMatrix) {
    let (cells, genes) = m.shape();
    println!(
        "{cells} cells × {genes} genes, seed {}, {} perturbation(s), {} stored values",
        sim.seed,
        sim.perturbations.len(),
        m.x().stored()
    );
    for g in sim.summary() {
        println!(
            "  {:<28} {:>6} cells  mostly on: {}",
            g.perturbation,
            g.cells,
            g.mostly_on.join(" ")
        );
    }
}

fn write_matrix(m: &ExpressionMatrix, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("h5ad") => h5ad::write(m, path)?,
        Some("tsv") => {
            write_table(m, path).with_context(|| format!("writing {}", path.display()))?
        }
        _ => anyhow::bail!("{}: the output must end in .h5ad or .tsv", path.display()),
    }
    Ok(())
}

fn write_network(sim: &Simulation, path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, sim.network_tsv()).with_context(|| format!("writing {}", path.display()))
}
