//! The page of a Jepsen run, `DIR/history.html` beside `history.jsonl`: one self-contained HTML
//! file (inline SVG, CSS and a little JavaScript, nothing fetched) that a student opens after a
//! run.
//!
//! The verdict and the failure text say *what* went wrong; the page shows *when*: each
//! operation as a bar from its invocation to its completion on its process's row, the faults as
//! bands behind them, the operations the check names outlined in red, a zoomed timeline and a
//! table of the operations around them (as Porcupine's visualisation does), and the latency of
//! the successful operations over time, where a fault shows as a gap or a rise.
//!
//! The page knows nothing of the protocol: it draws the strings the history records
//! ([`OpRecord::shown`](crate::jepsen::OpRecord::shown)) and finds the failing operations by
//! those strings in the check's failure text, which quotes them (every check names operations
//! with `describe`). It is drawn once, in Rust, so the page needs no data format of its own; the
//! script only zooms and filters.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::jepsen::{FaultRecord, History, JepsenReport, Outcome, PROCESS_STRIDE};

/// The page's file name, in the run's directory.
pub const PAGE_FILE: &str = "history.html";

/// A timeline's width in SVG units. Timelines stretch it to their box (`preserveAspectRatio =
/// none`), and the labels above and below are placed in percent, so zooming is a change of width.
const WIDTH: f64 = 1000.0;

/// The latency plot's size in SVG units (scaled uniformly: its dots stay round).
const LATENCY_WIDTH: f64 = 1200.0;
const LATENCY_HEIGHT: f64 = 260.0;
/// Room for the latency plot's axis labels, left and below.
const LATENCY_LEFT: f64 = 60.0;
const LATENCY_BOTTOM: f64 = 22.0;

/// At most this many rows in the table of the operations around the failure: an operation left
/// indefinite overlaps thousands.
const TABLE_ROWS: usize = 200;

/// How an operation ended, as the page colours it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Fail,
    Info,
    Open,
}

impl Kind {
    /// The CSS class.
    fn class(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Info => "info",
            Kind::Open => "open",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Fail => "failed",
            Kind::Info => "indefinite",
            Kind::Open => "open",
        }
    }
}

/// One operation as drawn.
struct Bar<'a> {
    process: u64,
    invoked: f64,
    /// When the client saw its end (for an indefinite one, when it gave up); `None` while open.
    completed: Option<f64>,
    kind: Kind,
    shown: &'a str,
    /// Named by the check's failure.
    failing: bool,
}

impl Bar<'_> {
    /// Where the bar ends: an open operation runs to the end of the history.
    fn end(&self, run_end: f64) -> f64 {
        self.completed.unwrap_or(run_end).max(self.invoked)
    }

    /// "1.234–1.236 s (2.1 ms)", for hovering and the table.
    fn when(&self) -> String {
        match self.completed {
            Some(c) => format!(
                "{:.3}–{:.3} s ({:.1} ms)",
                self.invoked,
                c,
                (c - self.invoked).max(0.0) * 1e3
            ),
            None => format!("{:.3} s, still open at the end", self.invoked),
        }
    }
}

/// A stretch of the run, drawn across [`WIDTH`] units.
#[derive(Clone, Copy)]
struct Window {
    from: f64,
    to: f64,
}

impl Window {
    /// The window `from..to`, at least a millisecond long (a zero-length run still has an axis).
    fn new(from: f64, to: f64) -> Self {
        Window {
            from,
            to: to.max(from + 1e-3),
        }
    }

    fn x(self, t: f64) -> f64 {
        (t.clamp(self.from, self.to) - self.from) / (self.to - self.from) * WIDTH
    }

    /// Where `t` is, in percent of the width.
    fn percent(self, t: f64) -> f64 {
        self.x(t) / WIDTH * 100.0
    }

    fn overlaps(self, start: f64, end: f64) -> bool {
        start <= self.to && end >= self.from
    }
}

/// A time as recorded, or 0 if it is not a time at all (the page draws what it is given).
fn secs(t: f64) -> f64 {
    if t.is_finite() && t > 0.0 {
        t
    } else {
        0.0
    }
}

/// Whether `failure` names the operation shown as `shown`. Checks quote operations whole, after
/// `: ` or `; ` (`...: process 1: get k2 => "a"; process 3: ...`) and before a `;` or the end;
/// the boundaries keep `process 1: get k2` (open) from matching inside `process 1: get k2 =>
/// "a"`.
fn named_in(failure: &str, shown: &str) -> bool {
    !shown.is_empty()
        && failure.match_indices(shown).any(|(i, _)| {
            let before = &failure[..i];
            let after = &failure[i + shown.len()..];
            (before.is_empty() || before.ends_with(": ") || before.ends_with("; "))
                && (after.is_empty() || after.starts_with(';'))
        })
}

/// Escapes `s` for HTML text and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page of a run: its report and its history.
pub fn page<O, R>(report: &JepsenReport, history: &History<O, R>) -> String {
    let failure = report.check.failure.as_deref().unwrap_or("");
    let bars: Vec<Bar> = history
        .ops
        .iter()
        .map(|o| Bar {
            process: o.process,
            invoked: secs(o.invoked),
            completed: o.completed.map(secs),
            kind: match o.outcome {
                Outcome::Ok(_) => Kind::Ok,
                Outcome::Fail => Kind::Fail,
                Outcome::Info => Kind::Info,
                Outcome::Open => Kind::Open,
            },
            shown: &o.shown,
            failing: !failure.is_empty() && named_in(failure, &o.shown),
        })
        .collect();
    let run_end = bars
        .iter()
        .map(|b| b.completed.unwrap_or(b.invoked))
        .chain(report.faults.iter().map(|f| secs(f.healed)))
        .fold(secs(report.seconds), f64::max);
    // A run that recorded nothing still gets a one-second axis.
    let run_end = if run_end > 0.0 { run_end } else { 1.0 };
    let whole = Window::new(0.0, run_end);

    let mut out = String::with_capacity(8192 + bars.len() * 400);
    let _ = writeln!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>jepsen {}: {}</title>\n<style>\n{}</style>\n</head>\n<body>",
        escape(report.protocol),
        escape(&report.check.verdict),
        include_str!("viewer.css")
    );
    header(&mut out, report, bars.len());

    out.push_str("<section>\n<h2>Operations</h2>\n");
    legend(&mut out);
    let focus = bars
        .iter()
        .find(|b| b.failing)
        .map(|b| whole.percent(b.invoked) / 100.0);
    timeline(&mut out, &bars, &report.faults, whole, run_end, focus);
    out.push_str("</section>\n");

    around_failure(&mut out, report, &bars, run_end);

    out.push_str(
        "<section>\n<h2>Latency of the successful operations</h2>\n\
         <p class=\"note\">Each dot is an operation that returned: when it was invoked, and how \
         long it took (log scale). Faults are shaded behind.</p>\n",
    );
    latency(&mut out, &bars, &report.faults, whole);
    out.push_str("</section>\n");

    faults(&mut out, &report.faults);
    let _ = writeln!(
        out,
        "<script>\n{}</script>\n</body>\n</html>",
        include_str!("viewer.js")
    );
    out
}

/// The verdict, the failure, what ran and the counts.
fn header(out: &mut String, report: &JepsenReport, operations: usize) {
    let (class, result) = if report.passed() {
        ("pass", "passed")
    } else if report.refuted() {
        ("fail", "failed: the history does not check")
    } else if report.check.ok {
        (
            "unknown",
            "inconclusive: no operation succeeded after the last fault healed",
        )
    } else {
        ("unknown", "inconclusive: the check could not decide")
    };
    let nemesis = if report.nemesis.is_empty() {
        "none".to_string()
    } else {
        let names: Vec<String> = report.nemesis.iter().map(ToString::to_string).collect();
        names.join(", ")
    };
    let _ = writeln!(
        out,
        "<header class=\"{class}\">\n<h1>jepsen {}: <span class=\"{class}\">{}</span></h1>\n\
         <div class=\"meta\">test {result}</div>\n\
         <div class=\"meta\">seed <b>{}</b> · nemesis <b>{}</b> · bug <b>{}</b> · \
         <b>{:.1}</b> s run, checked in {:.2} s · {} faults</div>\n\
         <div class=\"meta\">{operations} operations: <b>{}</b> ok, <b>{}</b> failed, \
         <b>{}</b> indefinite; {} ok after the last fault healed</div>",
        escape(report.protocol),
        escape(&report.check.verdict),
        report.seed,
        escape(&nemesis),
        escape(report.bug.unwrap_or("none")),
        secs(report.seconds),
        secs(report.check_seconds),
        report.faults.len(),
        report.ok,
        report.failed,
        report.indefinite,
        report.ok_after_heal,
    );
    if let Some(f) = &report.check.failure {
        let _ = writeln!(out, "<div class=\"failure\">{}</div>", escape(f));
    }
    let _ = writeln!(
        out,
        "<div class=\"meta\">history: {}</div>\n</header>",
        escape(&report.check.file.display().to_string())
    );
}

fn legend(out: &mut String) {
    out.push_str(
        "<div class=\"legend\">\
         <span><i class=\"ok\"></i>ok</span>\
         <span><i class=\"fail\"></i>failed (a read that timed out: no effect)</span>\
         <span><i class=\"info\"></i>indefinite (ends when the client gave up)</span>\
         <span><i class=\"after\"></i>it may still take effect</span>\
         <span><i class=\"open\"></i>open at the end</span>\
         <span><i class=\"bad\"></i>named by the check</span>\
         <span><i class=\"kill\"></i>kill</span>\
         <span><i class=\"partition\"></i>partition</span>\
         <span><i class=\"loss\"></i>loss</span>\
         <span><i class=\"delay\"></i>delay</span>\
         </div>\n\
         <p class=\"note\">One row per process: a client, renumbered after each indefinite \
         operation (the rows of one client are adjacent). Hover over a bar for the operation.</p>\n",
    );
}

/// A timeline of the operations that overlap `w`: a row per process, the faults behind, a zoom,
/// a filter, and, given `focus` (a fraction of the width), a button that zooms there.
fn timeline(
    out: &mut String,
    bars: &[Bar],
    faults: &[FaultRecord],
    w: Window,
    run_end: f64,
    focus: Option<f64>,
) {
    let drawn: Vec<&Bar> = bars
        .iter()
        .filter(|b| w.overlaps(b.invoked, b.end(run_end)))
        .collect();
    // Rows grouped by client: a client's processes are its index plus multiples of the stride.
    let mut rows: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for b in &drawn {
        rows.insert((b.process % PROCESS_STRIDE, b.process), 0);
    }
    for (i, row) in rows.values_mut().enumerate() {
        *row = i;
    }
    // Rows shrink as they multiply, so that hundreds of processes still fit on a screen.
    let row_h = (600.0 / rows.len().max(1) as f64).clamp(4.0, 18.0);
    let height = (rows.len().max(1) as f64 * row_h).ceil();
    let (pad, bar_h) = if row_h >= 8.0 {
        (2.0, row_h - 4.0)
    } else {
        (0.5, row_h - 1.0)
    };

    out.push_str("<div class=\"timeline-block\">\n<div class=\"controls\">");
    out.push_str(
        "<label>zoom <input type=\"range\" class=\"zoom\" min=\"0\" max=\"6\" step=\"0.25\" \
         value=\"0\"></label> <span class=\"zv\">×1.0</span>",
    );
    if let Some(at) = focus {
        let _ = write!(
            out,
            "<button class=\"focus\" data-at=\"{at:.5}\">zoom onto the failure</button>"
        );
    }
    out.push_str(
        "<label>dim all but <input type=\"search\" class=\"filter\" \
         placeholder=\"text, e.g. a key: k2\"></label></div>\n<div class=\"timeline\">\n",
    );

    // The row labels, outside the scroll box so that they stay put.
    let _ = write!(
        out,
        "<svg class=\"labels\" width=\"80\" height=\"{height}\" viewBox=\"0 0 80 {height}\">"
    );
    if row_h >= 9.0 {
        for (&(client, process), &i) in &rows {
            let _ = write!(
                out,
                "<text x=\"76\" y=\"{:.1}\" text-anchor=\"end\">{process}<title>client \
                 {client}, process {process}</title></text>",
                i as f64 * row_h + row_h * 0.5 + 3.5
            );
        }
    } else {
        let _ = write!(
            out,
            "<text x=\"76\" y=\"12\" text-anchor=\"end\">{} processes</text>",
            rows.len()
        );
    }
    out.push_str("</svg>\n");

    out.push_str("<div class=\"scroll\"><div class=\"inner\">\n<div class=\"flabels\">");
    for f in faults.iter().filter(|f| w.overlaps(f.start, f.healed)) {
        let _ = write!(
            out,
            "<span class=\"{kind}\" style=\"left:{:.3}%\" title=\"{kind} {:.2}–{:.2} s: {}\">\
             {kind}</span>",
            w.percent(secs(f.start)),
            secs(f.start),
            secs(f.healed),
            escape(&f.detail),
            kind = f.kind,
        );
    }
    out.push_str("</div>\n");

    let _ = writeln!(
        out,
        "<svg class=\"plot\" width=\"100%\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         preserveAspectRatio=\"none\">"
    );
    let mut previous_client = None;
    for (&(client, _), &i) in &rows {
        let y = i as f64 * row_h;
        if i % 2 == 1 {
            let _ = write!(
                out,
                "<rect class=\"stripe\" x=\"0\" y=\"{y:.2}\" width=\"{WIDTH}\" height=\"{row_h:.2}\"/>"
            );
        }
        if previous_client.is_some_and(|c| c != client) {
            let _ = write!(
                out,
                "<line class=\"client\" x1=\"0\" x2=\"{WIDTH}\" y1=\"{y:.2}\" y2=\"{y:.2}\"/>"
            );
        }
        previous_client = Some(client);
    }
    out.push('\n');
    let ticks = Ticks::new(w);
    for (t, level) in ticks.iter() {
        let _ = write!(
            out,
            "<line class=\"grid {}\" x1=\"{x:.3}\" x2=\"{x:.3}\" y1=\"0\" y2=\"{height}\"/>",
            Ticks::CLASSES[level],
            x = w.x(t)
        );
    }
    out.push('\n');
    // The failing operations last, so that no neighbour covers their outline.
    let (failing, others): (Vec<&Bar>, Vec<&Bar>) = drawn.iter().partition(|b| b.failing);
    for b in others.iter().chain(&failing) {
        let row = rows[&(b.process % PROCESS_STRIDE, b.process)];
        let y = row as f64 * row_h + pad;
        let (x0, x1) = (w.x(b.invoked), w.x(b.end(run_end)));
        let _ = writeln!(
            out,
            "<rect class=\"op {}{}\" x=\"{x0:.3}\" y=\"{y:.2}\" width=\"{:.3}\" height=\"{bar_h:.2}\">\
             <title>{}\n{}</title></rect>",
            b.kind.class(),
            if b.failing { " bad" } else { "" },
            x1 - x0,
            escape(b.shown),
            b.when(),
        );
        // An indefinite operation may take effect until the end of the history; its process's
        // row is otherwise empty from here on (the client carries on as another process).
        if b.kind == Kind::Info {
            let y = y + bar_h / 2.0;
            let _ = writeln!(
                out,
                "<line class=\"after\" x1=\"{x1:.3}\" x2=\"{:.3}\" y1=\"{y:.2}\" y2=\"{y:.2}\"/>",
                w.x(run_end)
            );
        }
    }
    // The faults over the bars, which at full width cover their rows; the labels above the
    // plot give the details on hover.
    fault_bands(out, faults, w, 0.0, height, |t| w.x(t));
    // The failing operations' times across all rows: at full width a bar is thinner than a pixel.
    for b in &failing {
        let _ = writeln!(
            out,
            "<line class=\"mark\" x1=\"{x:.3}\" x2=\"{x:.3}\" y1=\"0\" y2=\"{height}\"/>",
            x = w.x(b.invoked)
        );
    }
    out.push_str("</svg>\n<div class=\"axis\">");
    for (t, level) in ticks.iter() {
        // The labels at the ends stay inside the box.
        let at = w.percent(t);
        let end = if at < 1.0 {
            " start"
        } else if at > 99.0 {
            " end"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<span class=\"{}{end}\" style=\"left:{at:.3}%\">{} s</span>",
            Ticks::CLASSES[level],
            ticks.label(t)
        );
    }
    out.push_str("</div>\n</div></div>\n</div>\n</div>\n");
    if drawn.is_empty() {
        out.push_str("<p class=\"note\">No operations were recorded.</p>\n");
    }
}

/// The faults overlapping `w` as bands from `top` to `bottom`, with their detail on hover where
/// the band is not covered.
fn fault_bands(
    out: &mut String,
    faults: &[FaultRecord],
    w: Window,
    top: f64,
    bottom: f64,
    x: impl Fn(f64) -> f64,
) {
    for f in faults.iter().filter(|f| w.overlaps(f.start, f.healed)) {
        let (x0, x1) = (x(secs(f.start)), x(secs(f.healed)));
        let _ = writeln!(
            out,
            "<rect class=\"fault {kind}\" x=\"{x0:.3}\" y=\"{top:.2}\" width=\"{:.3}\" \
             height=\"{:.2}\"><title>{kind} {:.2}–{:.2} s: {}</title></rect>",
            (x1 - x0).max(0.0),
            bottom - top,
            secs(f.start),
            secs(f.healed),
            escape(&f.detail),
            kind = f.kind,
        );
    }
}

/// The time axis of a window: major ticks at 1, 2 or 5 times a power of ten, about ten of them;
/// minor ticks at a fifth of that, shown from ×4 zoom; fine ticks at a 25th, shown from ×16.
struct Ticks {
    w: Window,
    /// The fine step; every fifth tick is minor, every 25th major.
    step: f64,
    decimals: usize,
}

impl Ticks {
    /// The CSS class of each level of tick: major, minor, fine.
    const CLASSES: [&'static str; 3] = ["major", "minor", "fine"];

    fn new(w: Window) -> Self {
        let rough = (w.to - w.from) / 10.0;
        let power = 10f64.powf(rough.log10().floor());
        let major = [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * power)
            .find(|s| *s >= rough)
            .unwrap_or(10.0 * power);
        let step = major / 25.0;
        Ticks {
            w,
            step,
            decimals: (-step.log10()).ceil().max(0.0) as usize,
        }
    }

    /// Each tick's time and level (an index into [`Ticks::CLASSES`]).
    fn iter(&self) -> impl Iterator<Item = (f64, usize)> + '_ {
        let first = (self.w.from / self.step).ceil() as i64;
        let last = (self.w.to / self.step).floor() as i64;
        (first..=last).map(move |k| {
            let level = match (k % 25, k % 5) {
                (0, _) => 0,
                (_, 0) => 1,
                _ => 2,
            };
            (k as f64 * self.step, level)
        })
    }

    /// `t` without trailing zeros: `2`, `2.4`, `2.45`.
    fn label(&self, t: f64) -> String {
        let text = format!("{t:.*}", self.decimals);
        if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        }
    }
}

/// A zoomed timeline of the window around the operations the check names, and a table of the
/// operations that overlap them: what ran concurrently with the failure.
fn around_failure(out: &mut String, report: &JepsenReport, bars: &[Bar], run_end: f64) {
    if report.check.failure.is_none() {
        return;
    }
    out.push_str("<section>\n<h2>Around the failure</h2>\n");
    let failing: Vec<&Bar> = bars.iter().filter(|b| b.failing).collect();
    let Some(from) = failing.iter().map(|b| b.invoked).reduce(f64::min) else {
        out.push_str(
            "<p class=\"note\">The failure names no operation of the history as recorded.</p>\n\
             </section>\n",
        );
        return;
    };
    let to = failing.iter().map(|b| b.end(run_end)).fold(from, f64::max);
    // Enough around the failure to see what led to it, about a dozen operations of each process
    // on either side: the operations just before matter most.
    let margin = ((to - from) * 2.0)
        .max(12.0 * median_latency(bars))
        .max(0.005);
    let w = Window::new((from - margin).max(0.0), (to + margin).min(run_end));
    let _ = writeln!(
        out,
        "<p class=\"note\">{} operation{} named by the check, {from:.4}–{to:.4} s; shown \
         {:.4}–{:.4} s.</p>",
        failing.len(),
        if failing.len() == 1 { "" } else { "s" },
        w.from,
        w.to
    );
    timeline(out, bars, &report.faults, w, run_end, None);

    let overlapping: Vec<&Bar> = bars
        .iter()
        .filter(|b| b.invoked <= to && b.end(run_end) >= from)
        .collect();
    let _ = writeln!(
        out,
        "<p class=\"note\">The {} operations that overlap {from:.4}–{to:.4} s, in the order they \
         were invoked:</p>",
        overlapping.len()
    );
    out.push_str(
        "<table>\n<tr><th>process</th><th>invoked (s)</th><th>completed (s)</th>\
         <th>ms</th><th>outcome</th><th>operation</th></tr>\n",
    );
    for b in overlapping.iter().take(TABLE_ROWS) {
        let (completed, ms) = match b.completed {
            Some(c) => (
                format!("{c:.4}"),
                format!("{:.1}", (c - b.invoked).max(0.0) * 1e3),
            ),
            None => (String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "<tr{}><td class=\"num\">{}</td><td class=\"num\">{:.4}</td><td class=\"num\">{completed}\
             </td><td class=\"num\">{ms}</td><td class=\"{}\">{}</td><td class=\"op\">{}</td></tr>",
            if b.failing { " class=\"bad\"" } else { "" },
            b.process,
            b.invoked,
            b.kind.class(),
            b.kind.word(),
            escape(b.shown)
        );
    }
    out.push_str("</table>\n");
    if overlapping.len() > TABLE_ROWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">… and {} more.</p>",
            overlapping.len() - TABLE_ROWS
        );
    }
    out.push_str("</section>\n");
}

/// The median time a successful operation took, in seconds (0 if none did).
fn median_latency(bars: &[Bar]) -> f64 {
    let mut took: Vec<f64> = bars
        .iter()
        .filter(|b| b.kind == Kind::Ok)
        .filter_map(|b| Some(b.completed? - b.invoked))
        .collect();
    if took.is_empty() {
        return 0.0;
    }
    let middle = took.len() / 2;
    *took.select_nth_unstable_by(middle, f64::total_cmp).1
}

/// The latency of each successful operation against its invocation, on a log scale, with the
/// faults behind.
fn latency(out: &mut String, bars: &[Bar], faults: &[FaultRecord], w: Window) {
    let points: Vec<(&Bar, f64)> = bars
        .iter()
        .filter(|b| b.kind == Kind::Ok)
        .filter_map(|b| Some((b, ((b.completed? - b.invoked) * 1e3).max(0.01))))
        .collect();
    if points.is_empty() {
        out.push_str("<p class=\"note\">No operation succeeded.</p>\n");
        return;
    }
    let low = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let (low, high) = (
        low.log10().floor(),
        high.log10().ceil().max(low.log10().floor() + 1.0),
    );
    let (left, bottom) = (LATENCY_LEFT, LATENCY_HEIGHT - LATENCY_BOTTOM);
    let x = |t: f64| left + w.x(t) / WIDTH * (LATENCY_WIDTH - left - 10.0);
    let y = |ms: f64| bottom - (ms.log10() - low) / (high - low) * (bottom - 8.0);
    let _ = writeln!(
        out,
        "<svg class=\"latency\" viewBox=\"0 0 {LATENCY_WIDTH} {LATENCY_HEIGHT}\">"
    );
    fault_bands(out, faults, w, 8.0, bottom, x);
    for e in low as i64..=high as i64 {
        let ms = 10f64.powi(e as i32);
        let label = if ms >= 1.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{ms} ms")
        };
        let yy = y(ms);
        let _ = writeln!(
            out,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LATENCY_WIDTH - 10.0,
            left - 6.0,
            yy + 4.0,
        );
    }
    let ticks = Ticks::new(w);
    for t in ticks
        .iter()
        .filter_map(|(t, level)| (level == 0).then_some(t))
    {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{} s</text>",
            x(t),
            LATENCY_HEIGHT - 6.0,
            ticks.label(t)
        );
    }
    for (b, ms) in &points {
        let _ = writeln!(
            out,
            "<circle{} cx=\"{:.2}\" cy=\"{:.2}\" r=\"{}\"><title>{}\n{}</title></circle>",
            if b.failing { " class=\"bad\"" } else { "" },
            x(b.invoked),
            y(*ms),
            if b.failing { 5 } else { 2 },
            escape(b.shown),
            b.when()
        );
    }
    out.push_str("</svg>\n");
}

/// The faults as a table: kind, when, what.
fn faults(out: &mut String, faults: &[FaultRecord]) {
    out.push_str("<section>\n<h2>Faults</h2>\n");
    if faults.is_empty() {
        out.push_str("<p class=\"note\">No faults were injected.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<tr><th>fault</th><th>from (s)</th><th>healed (s)</th><th>what</th></tr>\n",
    );
    for f in faults {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{:.2}</td><td>{}</td></tr>",
            f.kind,
            secs(f.start),
            secs(f.healed),
            escape(&f.detail)
        );
    }
    out.push_str("</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::jepsen::{HistoryEvent, Nemesis, OpRecord};
    use crate::service::Checked;

    fn op(
        process: u64,
        invoked: f64,
        outcome: Outcome<String>,
        shown: &str,
    ) -> OpRecord<String, String> {
        OpRecord {
            process,
            id: process,
            op: String::new(),
            completed: (outcome != Outcome::Open).then_some(invoked + 0.01),
            outcome,
            invoked,
            shown: shown.to_string(),
        }
    }

    fn report(failure: Option<&str>, faults: Vec<FaultRecord>, seconds: f64) -> JepsenReport {
        JepsenReport {
            protocol: "craq",
            seed: 7,
            nemesis: vec![Nemesis::Kill],
            bug: Some("craq-dirty-read"),
            check: Checked {
                verdict: if failure.is_some() {
                    "not linearizable"
                } else {
                    "linearizable"
                }
                .into(),
                ok: failure.is_none(),
                failure: failure.map(String::from),
                file: PathBuf::from("/tmp/run/history.jsonl"),
            },
            ok: 2,
            failed: 0,
            indefinite: 1,
            ok_after_heal: 2,
            faults,
            seconds,
            check_seconds: 0.01,
            page: PathBuf::from("/tmp/run/history.html"),
            expectations: Vec::new(),
        }
    }

    /// Three operations, one of them stale and with markup in its value, and a kill.
    fn refuted() -> (JepsenReport, History<String, String>) {
        let stale = r#"process 1: get k1 => "<b>&""#;
        let ops = vec![
            op(
                0,
                0.2,
                Outcome::Ok("ok".into()),
                r#"process 0: put k1 "a" => "ok""#,
            ),
            op(1, 1.3, Outcome::Ok("<b>&".into()), stale),
            op(
                2,
                1.5,
                Outcome::Info,
                r#"process 2: append k1 "c" => indefinite"#,
            ),
        ];
        let events = (0..ops.len())
            .flat_map(|op| [false, true].map(|completes| HistoryEvent { op, completes }))
            .collect();
        let faults = vec![FaultRecord {
            kind: Nemesis::Kill,
            detail: "kill -9 nodes [0, 2], restarted".into(),
            start: 0.5,
            healed: 1.0,
        }];
        let failure =
            format!("key \"k1\": 1 operations linearized; none of these fits next: {stale}");
        (report(Some(&failure), faults, 2.0), History { ops, events })
    }

    #[test]
    fn page_draws_every_operation_the_fault_and_the_failing_operation() {
        let (report, history) = refuted();
        let html = page(&report, &history);
        let (overview, rest) = html.split_once("<h2>Around the failure</h2>").unwrap();
        assert_eq!(overview.matches("<rect class=\"op ").count(), 3);
        assert_eq!(overview.matches("<rect class=\"op ok\"").count(), 1);
        assert_eq!(overview.matches("<rect class=\"op info\"").count(), 1);
        assert_eq!(overview.matches("<line class=\"after\"").count(), 1);
        // The stale read is outlined, its markup escaped, in both timelines and in the table.
        let bad = "<rect class=\"op ok bad\"";
        assert_eq!(overview.matches(bad).count(), 1);
        assert_eq!(rest.matches(bad).count(), 1);
        let escaped = "process 1: get k1 =&gt; &quot;&lt;b&gt;&amp;&quot;";
        assert!(overview.contains(&format!(
            "<title>{escaped}\n1.300–1.310 s (10.0 ms)</title>"
        )));
        assert!(rest.contains(&format!("<td class=\"op\">{escaped}</td>")));
        assert!(rest.contains("<tr class=\"bad\">"));
        assert!(!html.contains("<b>&"));
        // The kill, as a band with its detail on the timeline and the latency plot (the zoomed
        // timeline, 1.18-1.43 s, is after it), and labelled.
        let band = "<rect class=\"fault kill\" x=\"250.000\" y=\"0.00\" width=\"250.000\"";
        assert!(overview.contains(band), "{overview}");
        assert_eq!(
            html.matches("<title>kill 0.50–1.00 s: kill -9 nodes [0, 2], restarted</title>")
                .count(),
            2
        );
        assert!(overview.contains(">kill</span>"));
        // The header: verdict, failure, what ran.
        assert!(html.contains("jepsen craq: <span class=\"fail\">not linearizable</span>"));
        assert!(html.contains("<div class=\"failure\">key &quot;k1&quot;: 1 operations linearized"));
        assert!(html.contains("seed <b>7</b> · nemesis <b>kill</b> · bug <b>craq-dirty-read</b>"));
        assert!(html.contains("<b>2</b> ok, <b>0</b> failed, <b>1</b> indefinite"));
        // Only the two successful operations are dots on the latency plot, the stale one ringed.
        assert_eq!(html.matches("<circle").count(), 2);
        assert_eq!(html.matches("<circle class=\"bad\"").count(), 1);
    }

    #[test]
    fn a_failure_naming_no_recorded_operation_says_so() {
        let (mut report, history) = refuted();
        report.check.failure = Some("G2: T4 -rw-> T5; T4; T5".into());
        let html = page(&report, &history);
        assert!(!html.contains(" bad\""));
        assert!(html.contains("The failure names no operation of the history as recorded."));
    }

    #[test]
    fn an_open_operation_is_not_the_completed_one_a_failure_names() {
        let failure = r#"none fits: process 1: get k2 => "a"; process 3: get k2 => "b""#;
        assert!(named_in(failure, r#"process 1: get k2 => "a""#));
        assert!(named_in(failure, r#"process 3: get k2 => "b""#));
        assert!(!named_in(failure, "process 1: get k2"));
        assert!(!named_in(failure, r#"3: get k2 => "b""#));
        assert!(!named_in(failure, ""));
    }

    #[test]
    fn an_empty_run_renders() {
        let html = page(
            &report(None, Vec::new(), 0.0),
            &History::<String, String>::default(),
        );
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(html.contains("No operations were recorded."));
        assert!(html.contains("No operation succeeded."));
        assert!(html.contains("No faults were injected."));
        assert!(!html.contains("Around the failure"));
        assert!(!html.contains("<rect class=\"op"));
        // The one-second axis of a run that recorded nothing.
        assert!(html.contains(">0 s</span>") && html.contains(">1 s</span>"));
    }

    #[test]
    fn ticks_are_round_numbers() {
        let ticks = Ticks::new(Window::new(0.0, 20.0));
        let major: Vec<f64> = ticks.iter().filter(|t| t.1 == 0).map(|t| t.0).collect();
        assert_eq!(major, (0..=10).map(|k| 2.0 * k as f64).collect::<Vec<_>>());
        assert_eq!(ticks.iter().filter(|t| t.1 == 1).count(), 40);
        assert_eq!(ticks.iter().count(), 251);
        assert_eq!(ticks.label(0.08), "0.08");
        assert_eq!(ticks.label(4.0), "4");
        let ticks = Ticks::new(Window::new(1.2, 1.5));
        assert_eq!(ticks.label(1.26), "1.26");
        assert_eq!(ticks.label(1.3), "1.3");
    }
}
