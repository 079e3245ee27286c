//! docs/benchmarks.md: the machine, the command, and a table per comparison.

/// Median, min and max of one measurement.
pub(crate) struct Sample {
    pub(crate) median: f64,
    min: f64,
    max: f64,
}

impl Sample {
    pub(crate) fn of(values: &[f64]) -> Self {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            median,
            min: sorted.first().copied().unwrap_or(0.0),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }

    /// The median over rounds of `ours[i] / baseline[i]`: each round against the baseline's
    /// round beside it, so a slow spell of the shared machine weighs on both sides of a ratio.
    pub(crate) fn paired_ratio(ours: &[f64], baseline: &[f64]) -> f64 {
        let ratios: Vec<f64> = ours.iter().zip(baseline).map(|(o, b)| o / b).collect();
        Self::of(&ratios).median
    }

    /// `median (min–max)` with `digits` decimals.
    pub(crate) fn show(&self, digits: usize) -> String {
        format!(
            "{:.digits$} ({:.digits$}–{:.digits$})",
            self.median, self.min, self.max
        )
    }
}

/// KiB as MiB text.
pub(crate) fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub(crate) struct Report {
    header: String,
    sections: Vec<String>,
    verdicts: Vec<(String, bool, String)>,
}

impl Report {
    pub(crate) fn new(command: &str, quick: bool) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .next()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .map_or_else(
                || "unknown".to_owned(),
                |kib| format!("{:.0} GiB", kib as f64 / 1_048_576.0),
            );
        let mode = if quick {
            " (quick: tiny rounds that only prove the harness runs; not results)"
        } else {
            ""
        };
        let build = if quick { "Debug" } else { "Release" };
        let header = format!(
            "# Benchmarks\n\nMeasured, not written: produced by `{command}`{mode}. Everything ran on one machine: \
             {cores} cores ({cpu}), {memory} of memory, a shared and noisy machine, so each comparison alternates its \
             sides in the same run and reports medians with min–max. Servers run as separate processes; all traffic is \
             on 127.0.0.1. {build} builds.\n"
        );
        Self {
            header,
            sections: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// Records whether a goal was met, judged from the measured `detail`.
    pub(crate) fn verdict(&mut self, goal: &str, met: bool, detail: String) {
        self.verdicts.push((goal.to_owned(), met, detail));
    }

    pub(crate) fn section(&mut self, title: &str, text: &str, header: &[&str], rows: Vec<Vec<String>>) {
        let mut out = format!(
            "\n## {title}\n\n{text}\n\n| {} |\n|{}\n",
            header.join(" | "),
            " --- |".repeat(header.len())
        );
        for row in rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        eprintln!("{out}");
        self.sections.push(out);
    }

    /// A section without a table: a comparison that could not run, and why.
    pub(crate) fn note(&mut self, title: &str, text: &str) {
        let out = format!("\n## {title}\n\n{text}\n");
        eprintln!("{out}");
        self.sections.push(out);
    }

    pub(crate) fn render(&self) -> String {
        let mut text = self.header.clone();
        text.push_str("\n## Goals\n\n| goal | verdict | measured |\n| --- | --- | --- |\n");
        for (goal, met, detail) in &self.verdicts {
            let verdict = if *met { "met" } else { "**missed**" };
            text.push_str(&format!("| {goal} | {verdict} | {detail} |\n"));
        }
        for section in &self.sections {
            text.push_str(section);
        }
        text.push('\n');
        text.push_str(include_str!("../analysis.md"));
        text
    }
}
