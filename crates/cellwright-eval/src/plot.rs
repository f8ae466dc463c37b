//! Plots as SVG files (plotters): precision–recall curves, any y against x (wall time against
//! problem size, on log axes when asked), and points coloured by category (cell layouts).

use std::path::Path;

use plotters::prelude::*;

use crate::ranking::Curve;

/// Why a plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: {message}")]
    Draw { path: String, message: String },
    #[error("nothing to plot in {0}")]
    Empty(String),
}

/// One named line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Axis labels and scales of a [`lines`] plot.
#[derive(Debug, Clone)]
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    pub log_x: bool,
    pub log_y: bool,
}

/// Colours of line series: the first eight of [`CATEGORIES`] (tab10's order).
const PALETTE: &[RGBColor] = CATEGORIES.split_at(8).0;

/// The precision–recall curves of several methods on one data set, with a dashed line at the
/// density of true candidates (a random ranking's precision).
pub fn pr_curves(
    path: &Path,
    title: &str,
    curves: &[(String, Curve)],
    density: f64,
) -> Result<(), PlotError> {
    let mut series: Vec<Series> = curves
        .iter()
        .map(|(name, c)| Series {
            name: name.clone(),
            points: c
                .recall
                .iter()
                .copied()
                .zip(c.precision.iter().copied())
                .collect(),
        })
        .collect();
    series.push(Series {
        name: "random (density)".into(),
        points: vec![(0.0, density), (1.0, density)],
    });
    lines(
        path,
        &Axes {
            title,
            x: "recall",
            y: "precision",
            log_x: false,
            log_y: false,
        },
        &series,
        Some(((0.0, 1.0), (0.0, 1.0))),
    )
}

/// A range widened a little so that points at its ends are not drawn on the axes.
fn pad(lo: f64, hi: f64, log: bool) -> (f64, f64) {
    if log {
        (lo / 1.5, hi * 1.5)
    } else if hi > lo {
        (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

/// The smallest and largest of `values`.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// 20 distinguishable colours (matplotlib's tab20), for categories.
const CATEGORIES: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// Points coloured by category, with a legend of the categories (most frequent first; past
/// 20 categories colours repeat). `labels[i]` is the category of `points[i]`.
pub fn scatter(
    path: &Path,
    axes: &Axes,
    points: &[(f64, f64)],
    labels: &[String],
) -> Result<(), PlotError> {
    let shown = path.display().to_string();
    let kept: Vec<usize> = (0..points.len().min(labels.len()))
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    if kept.is_empty() {
        return Err(PlotError::Empty(shown));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for &i in &kept {
        match counts.iter_mut().find(|(l, _)| *l == labels[i]) {
            Some((_, n)) => *n += 1,
            None => counts.push((&labels[i], 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let (x0, x1) = range(kept.iter().map(|&i| points[i].0));
    let (y0, y1) = range(kept.iter().map(|&i| points[i].1));
    let ((x0, x1), (y0, y1)) = (pad(x0, x1, false), pad(y0, y1, false));
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: shown.clone(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (820, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| draw(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .draw()
        .map_err(|e| draw(&e))?;
    for (c, (label, n)) in counts.iter().enumerate() {
        let color = CATEGORIES[c % CATEGORIES.len()];
        let members = kept
            .iter()
            .filter(|&&i| labels[i] == *label)
            .map(|&i| points[i]);
        chart
            .draw_series(members.map(|p| Circle::new(p, 2, color.filled())))
            .map_err(|e| draw(&e))?
            .label(format!("{label} ({n})"))
            .legend(move |(x, y)| Circle::new((x + 6, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

/// Lines with markers; `bounds` fixes the axes ((x range), (y range)), else they fit the data.
pub fn lines(
    path: &Path,
    axes: &Axes,
    series: &[Series],
    bounds: Option<((f64, f64), (f64, f64))>,
) -> Result<(), PlotError> {
    let shown = path.display().to_string();
    // Each series' points that its axes can show (finite; positive on a log scale).
    let usable = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let drawn: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|&(x, y)| usable(x, axes.log_x) && usable(y, axes.log_y))
                .collect()
        })
        .collect();
    let all: Vec<(f64, f64)> = drawn.iter().flatten().copied().collect();
    if all.is_empty() {
        return Err(PlotError::Empty(shown));
    }
    let ((x0, x1), (y0, y1)) = bounds.unwrap_or_else(|| {
        (
            range(all.iter().map(|p| p.0)),
            range(all.iter().map(|p| p.1)),
        )
    });
    let (x0, x1) = if bounds.is_some() {
        (x0, x1)
    } else {
        pad(x0, x1, axes.log_x)
    };
    let (y0, y1) = if bounds.is_some() {
        (y0, y1)
    } else {
        pad(y0, y1, axes.log_y)
    };
    let draw = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: shown.clone(),
        message: e.to_string(),
    };
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    // The four scale combinations are four chart types.
    macro_rules! chart {
        ($xr:expr, $yr:expr) => {{
            let mut chart = ChartBuilder::on(&root)
                .caption(axes.title, ("sans-serif", 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d($xr, $yr)
                .map_err(|e| draw(&e))?;
            chart
                .configure_mesh()
                .x_desc(axes.x)
                .y_desc(axes.y)
                .draw()
                .map_err(|e| draw(&e))?;
            for (i, (s, points)) in series.iter().zip(&drawn).enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(|e| draw(&e))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                if points.len() <= 40 {
                    chart
                        .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(|e| draw(&e))?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| draw(&e))?;
        }};
    }
    match (axes.log_x, axes.log_y) {
        (false, false) => chart!(x0..x1, y0..y1),
        (true, false) => chart!((x0..x1).log_scale(), y0..y1),
        (false, true) => chart!(x0..x1, (y0..y1).log_scale()),
        (true, true) => chart!((x0..x1).log_scale(), (y0..y1).log_scale()),
    }
    root.present().map_err(|e| draw(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ranking::{Scored, pr_curve};

    #[test]
    fn plots_are_svg_files_with_every_series_named() {
        let dir = tempfile::tempdir().unwrap();
        let scored: Vec<Scored> = [(0.9, true), (0.8, false), (0.7, true), (0.1, false)]
            .iter()
            .map(|&(score, truth)| Scored { score, truth })
            .collect();
        let curve = pr_curve(&scored).unwrap();
        let path = dir.path().join("pr.svg");
        pr_curves(&path, "toy", &[("ours".into(), curve)], 0.5).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("ours") && svg.contains("recall"));

        let path = dir.path().join("time.svg");
        let series = [Series {
            name: "ours".into(),
            points: vec![(10.0, 0.5), (100.0, 4.0), (1000.0, 50.0)],
        }];
        let axes = Axes {
            title: "scaling",
            x: "genes",
            y: "seconds",
            log_x: true,
            log_y: true,
        };
        lines(&path, &axes, &series, None).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("genes"));
        let empty = [Series {
            name: "none".into(),
            points: vec![(0.0, 1.0)],
        }];
        assert!(matches!(
            lines(&path, &axes, &empty, None),
            Err(PlotError::Empty(_))
        ));
    }

    #[test]
    fn a_scatter_names_each_category_with_its_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("umap.svg");
        let points = [(0.0, 0.0), (1.0, 1.0), (2.0, 0.5), (f64::NAN, 1.0)];
        let labels: Vec<String> = ["B cell", "T cell", "T cell", "B cell"]
            .map(String::from)
            .to_vec();
        let axes = Axes {
            title: "UMAP",
            x: "UMAP 1",
            y: "UMAP 2",
            log_x: false,
            log_y: false,
        };
        scatter(&path, &axes, &points, &labels).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("T cell (2)") && svg.contains("B cell (1)"),
            "{svg}"
        );
        assert!(matches!(
            scatter(&path, &axes, &points[3..], &labels[3..]),
            Err(PlotError::Empty(_))
        ));
    }
}
