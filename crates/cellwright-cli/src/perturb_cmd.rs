//! `cellwright perturb train DATA …` and `cellwright perturb predict DATA --genes A,B …`:
//! perturbation-response models on a screen (a data set with `obs.perturbation`, or a
//! catalogue Boolean model's simulated screen), scored on GEARS's held-out perturbations, or
//! asked about one perturbation. The screens and the fitted models come from the
//! perturbation tools' `PerturbState`, so the command and the tools answer alike.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, ToolError};
use cellwright_perturb::{
    Category, Direction, Fitted, MechanisticOptions, Method, PerturbError, Predictor, ScreenData,
    Split, SplitOptions, Summary, score_split, summarise,
};
use cellwright_sim::SimError;
use cellwright_tools_perturb::{DEFAULT_PAIRS, PerturbState, Prediction};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::exit;
use crate::progress;

#[derive(Debug, Subcommand)]
pub enum PerturbCommand {
    /// Split a screen GEARS's way, fit every model on the training perturbations and score
    /// them on the held-out ones, per category; print the mechanistic model's learned rules.
    Train(TrainArgs),
    /// Predict one perturbation's effect with a model fitted on the whole screen, with the
    /// learned regulatory path behind each change.
    Predict(PredictArgs),
}

#[derive(Debug, Args)]
pub struct ScreenArgs {
    /// An .h5ad file whose obs.perturbation names each cell's perturbation (`control`,
    /// `GATA1 KO`, `GATA1 KO + PU1 OE`), or a catalogue Boolean model (e.g. krumsiek_myeloid)
    /// or .bnet file, whose screen is simulated: every single knockout and overexpression,
    /// and --pairs double knockouts.
    data: String,
    /// Seed of the simulated screen and of the mechanistic model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Double knockouts in a simulated screen (at most every pair).
    #[arg(long, default_value_t = DEFAULT_PAIRS)]
    pairs: usize,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    screen: ScreenArgs,
    /// Seed of the split.
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Share of the single perturbations held out.
    #[arg(long, default_value_t = SplitOptions::default().unseen_singles)]
    unseen_singles: f64,
    /// Share of the combinations whose items all train that are held out themselves.
    #[arg(long, default_value_t = SplitOptions::default().seen2_pairs)]
    seen2_pairs: f64,
    /// Also write the split, the scores and the learned rules as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    screen: ScreenArgs,
    /// The genes perturbed together (comma-separated).
    #[arg(long, required = true, value_delimiter = ',')]
    genes: Vec<String>,
    /// Overexpress the genes instead of knocking them out.
    #[arg(long)]
    overexpress: bool,
    /// The model that predicts; only ensemble and mechanistic give paths.
    #[arg(long, default_value = "ensemble", value_parser = method_parser())]
    model: Method,
    /// Genes to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print the prediction as JSON (as the predict_perturbation tool returns it).
    #[arg(long)]
    json: bool,
}

fn method_parser() -> impl TypedValueParser<Value = Method> {
    PossibleValuesParser::new(Method::ALL.map(Method::name)).map(|s| {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .unwrap_or_default()
    })
}

/// A tool-layer result for the command line: `None` when cancelled, a failure's own message.
fn checked<T>(result: Result<T, ToolError>) -> anyhow::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(ToolError::Cancelled) => Ok(None),
        Err(ToolError::Failed { message, .. }) => Err(anyhow::anyhow!(message)),
        Err(e) => Err(e.into()),
    }
}

/// `method` fitted on `train`, with a spinner; `None` when cancelled.
fn fit(
    method: Method,
    data: &ScreenData,
    train: &[usize],
    options: &MechanisticOptions,
    cancel: &CancelToken,
) -> anyhow::Result<Option<Fitted>> {
    let result =
        progress::with_spinner(|shown| Fitted::fit(method, data, train, options, shown, cancel));
    match result {
        Ok(f) => Ok(Some(f)),
        Err(PerturbError::Cancelled | PerturbError::Sim(SimError::Cancelled)) => Ok(None),
        Err(e) => Err(anyhow::Error::from(e).context(format!("fitting {}", method.name()))),
    }
}

pub fn run(command: PerturbCommand, cancel: &CancelToken) -> anyhow::Result<u8> {
    let done = match command {
        PerturbCommand::Train(args) => train(args, cancel)?,
        PerturbCommand::Predict(args) => predict(args, cancel)?,
    };
    if done.is_none() {
        eprintln!("cancelled");
        return Ok(exit::CANCELLED);
    }
    Ok(0)
}

fn train(args: TrainArgs, cancel: &CancelToken) -> anyhow::Result<Option<()>> {
    let ScreenArgs { data, seed, pairs } = args.screen;
    let state = PerturbState::default().with_pairs(pairs);
    let Some(screen) = checked(progress::with_spinner(|shown| {
        state.screen(&data, seed, shown, cancel)
    }))?
    else {
        return Ok(None);
    };
    println!("{}", screen.describe());
    let options = SplitOptions {
        unseen_singles: args.unseen_singles,
        seen2_pairs: args.seen2_pairs,
    };
    let split = Split::gears(&screen.data, options, args.split_seed)?;
    let tested: Vec<String> = Category::ALL
        .iter()
        .map(|&c| format!("{} {}", c.name(), split.tested(c).len()))
        .collect();
    println!(
        "split (seed {}): {} training perturbations; held out: {}",
        args.split_seed,
        split.train.len(),
        tested.join(", ")
    );
    let started = Instant::now();
    let options = MechanisticOptions {
        seed,
        ..MechanisticOptions::default()
    };
    let data = &screen.data;
    // The ensemble's mechanistic member is the mechanistic model: it is fitted once.
    let Some(Fitted {
        predictor: ensemble,
        mechanistic,
        ..
    }) = fit(Method::Ensemble, data, &split.train, &options, cancel)?
    else {
        return Ok(None);
    };
    let mechanistic = mechanistic.context("the ensemble has no mechanistic member")?;
    let mut methods: Vec<Box<dyn Predictor>> = vec![ensemble, Box::new(mechanistic.clone())];
    for method in Method::ALL {
        if matches!(method, Method::Ensemble | Method::Mechanistic) {
            continue;
        }
        let Some(fitted) = fit(method, data, &split.train, &options, cancel)? else {
            return Ok(None);
        };
        methods.push(fitted.predictor);
    }
    let fit_seconds = started.elapsed().as_secs_f64();
    let all: Vec<&dyn Predictor> = methods.iter().map(|m| m.as_ref()).collect();
    let scored = score_split(data, &split, &all)?;
    let summaries = summarise(&scored, Method::TrainMean.name());
    println!("fitted {} models in {fit_seconds:.1} s", methods.len());
    print_summaries(&summaries);
    println!("\nlearned rules (mechanistic model, training perturbations; share of cells missed):");
    for r in mechanistic.rules() {
        println!("  {:<12} {:>5.1} %  {}", r.gene, r.error * 100.0, r.rule);
    }
    if let Some(path) = &args.json {
        let label = |g: usize| data.groups[g].perturbation.label();
        let report = json!({
            "data": screen.name,
            "source": screen.describe(),
            "seed": seed,
            "split": {
                "seed": split.seed,
                "train": split.train.iter().map(|&g| label(g)).collect::<Vec<_>>(),
                "test": split.test.iter().map(|&(g, c)| json!({"perturbation": label(g), "category": c})).collect::<Vec<_>>(),
            },
            "summaries": summaries,
            "scored": scored,
            "rules": mechanistic.rules(),
        });
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(Some(()))
}

fn predict(args: PredictArgs, cancel: &CancelToken) -> anyhow::Result<Option<()>> {
    let ScreenArgs { data, seed, pairs } = args.screen;
    let state = PerturbState::default().with_pairs(pairs);
    let Some(model) = checked(progress::with_spinner(|shown| {
        state.model(&data, args.model, seed, shown, cancel)
    }))?
    else {
        return Ok(None);
    };
    let direction = if args.overexpress {
        Direction::Overexpression
    } else {
        Direction::Knockout
    };
    let Some(p) = checked(model.screen.perturbation(&args.genes, direction))? else {
        return Ok(None);
    };
    let Some(prediction) = checked(model.predict(&p, args.top))? else {
        return Ok(None);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&prediction)?);
    } else {
        print_prediction(&prediction);
    }
    Ok(Some(()))
}

fn print_prediction(p: &Prediction) {
    println!("{}", p.data);
    println!("{}", p.summary);
    if p.changes.is_empty() {
        return;
    }
    let paths = p.changes.iter().any(|c| c.path.is_some());
    let mut header = format!("  {:<14} {:>9}", "gene", "predicted");
    if p.measured {
        header.push_str(&format!(" {:>9}", "observed"));
    }
    if paths {
        header.push_str("  path");
    }
    println!("{header}");
    for c in &p.changes {
        let mut line = format!("  {:<14} {:>+9.3}", c.gene, c.predicted);
        if let Some(o) = c.observed {
            line.push_str(&format!(" {o:>+9.3}"));
        }
        match &c.path {
            Some(Some(path)) => line.push_str(&format!("  {path}")),
            Some(None) => line.push_str("  (no path in the learned network)"),
            None => {}
        }
        println!("{line}");
    }
}

/// Per category and method, the mean scores: Pearson delta over all genes and over the top
/// 20 observed changes, MAE, DES, PDS and the VCC score against the train mean.
pub fn print_summaries(summaries: &[Summary]) {
    println!(
        "  {:<14} {:<12} {:>3} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "split", "method", "n", "r", "r-top20", "MAE", "DES", "PDS", "VCC"
    );
    for s in summaries {
        println!(
            "  {:<14} {:<12} {:>3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3} {:>7.3}",
            s.category.name(),
            s.method,
            s.perturbations,
            s.pearson_delta,
            s.pearson_delta_top20,
            s.mae,
            s.des,
            s.pds,
            s.vcc_score
        );
    }
}
