//! Drawing a frame: header, the chosen view, the findings strip, the help.
//! The same code draws the terminal and `--batch` text.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState};

use super::app::{App, COLUMNS, Col, View};
use super::model::{Model, PortRow};

/// Findings lines the strip shows at most (the findings view has them all).
const STRIP_LINES: usize = 4;

/// `1234567.0` → `1.2M`: SI units, at most 5 cells.
pub fn human(v: f64) -> String {
    const UNITS: [&str; 6] = ["", "k", "M", "G", "T", "P"];
    let mut v = v;
    let mut i = 0;
    while v >= 999.5 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        if v == 0.0 || v >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    } else if v < 99.95 {
        format!("{v:.1}{}", UNITS[i])
    } else {
        format!("{v:.0}{}", UNITS[i])
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), human)
}

const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as block characters, scaled to their maximum.
pub fn sparkline(samples: impl DoubleEndedIterator<Item = f64>, width: usize) -> String {
    let mut last: Vec<f64> = samples.rev().take(width).collect();
    last.reverse();
    let max = last.iter().copied().fold(0.0, f64::max);
    last.iter()
        .map(|&v| {
            if v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                BLOCKS[((v / max * 7.0).round() as usize).min(7)]
            }
        })
        .collect()
}

fn style(app: &App, color: Color) -> Style {
    if app.color {
        Style::default().fg(color)
    } else {
        Style::default()
    }
}

/// Columns that fit `width`, dropping the least needed first.
pub fn columns(width: u16) -> Vec<Col> {
    let mut cols: Vec<Col> = COLUMNS.to_vec();
    let need = |c: &[Col]| c.iter().map(|c| c.width() + 1).sum::<u16>();
    for drop in [
        Col::Ecn,
        Col::LinkLayer,
        Col::Speed,
        Col::Netdev,
        Col::Trend,
    ] {
        if need(&cols) <= width {
            break;
        }
        cols.retain(|c| *c != drop);
    }
    cols
}

fn cell(app: &App, model: &Model, r: &PortRow, c: Col, trend_width: u16) -> String {
    let scale = if app.bits { 8.0 } else { 1.0 };
    match c {
        Col::Device => r.device.clone(),
        Col::Port => r.port.to_string(),
        Col::Netdev => r.netdev.clone(),
        Col::LinkLayer => r.link_layer.clone(),
        Col::State => r.state.clone(),
        Col::Speed => r.speed.clone(),
        Col::Tx => opt(r.tx.map(|v| v * scale)),
        Col::Rx => opt(r.rx.map(|v| v * scale)),
        Col::Pkts => opt(r.pkts),
        Col::Errors => opt(r.errors),
        Col::Retransmits => opt(r.retransmits),
        Col::Cnp => opt(r.cnp),
        Col::Ecn => opt(r.ecn),
        Col::Pause => r.pause_percent.map_or("-".into(), |p| format!("{p:.1}")),
        Col::Trend => model
            .history
            .get(&r.key())
            .map(|h| sparkline(h.iter().copied(), usize::from(trend_width)))
            .unwrap_or_default(),
    }
}

fn header(app: &App, model: &Model) -> Vec<Line<'static>> {
    // The fabric is read every fabric.interval: its rates have their own.
    let interval = if app.view == View::Fabric && !model.fabric.is_empty() {
        model
            .fabric_interval
            .map_or("first fabric read".to_string(), |s| {
                format!("over {s:.2}s between fabric reads")
            })
    } else {
        model
            .interval
            .map_or("first sample".to_string(), |s| format!("over {s:.2}s"))
    };
    let mut first = vec![
        Span::styled(
            "rdma-monitor top",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "  {}  {}  rates {interval}, refresh {}s",
            model.doc.hostname, app.origin, app.refresh_secs
        )),
    ];
    if app.paused {
        first.push(Span::styled(
            "  PAUSED",
            style(app, Color::Yellow).add_modifier(Modifier::BOLD),
        ));
    }
    let tab = |v: View, name: &'static str| {
        if app.view == v {
            Span::styled(name, Style::default().add_modifier(Modifier::REVERSED))
        } else {
            Span::raw(name)
        }
    };
    let mut second = vec![
        tab(View::Ports, "[p]orts"),
        Span::raw(" "),
        tab(View::Consumers, "[c]onsumers"),
        Span::raw(" "),
        tab(View::Findings, "[f]indings"),
        Span::raw(" "),
        tab(View::Fabric, "fa[b]ric"),
        Span::raw(format!(
            "  sort {}{}",
            app.sort.title(app.bits),
            if app.reverse { " (reversed)" } else { "" }
        )),
    ];
    if app.editing || !app.filter.is_empty() {
        second.push(Span::raw(format!(
            "  filter /{}{}",
            app.filter,
            if app.editing { "_" } else { "" }
        )));
    }
    second.push(Span::raw("  ? help"));
    let mut lines = vec![Line::from(first), Line::from(second)];
    if let Some(e) = &app.error {
        lines.push(Line::from(Span::styled(
            format!("error: {e}"),
            style(app, Color::Red),
        )));
    }
    lines
}

fn ports(f: &mut Frame, area: Rect, app: &App, model: &Model, all_rows: bool) {
    let rows = app.rows(&model.ports);
    let cols = columns(area.width);
    let fixed: u16 = cols
        .iter()
        .filter(|c| **c != Col::Trend)
        .map(|c| c.width() + 1)
        .sum();
    let trend_width = area.width.saturating_sub(fixed).max(Col::Trend.width());
    let widths: Vec<Constraint> = cols
        .iter()
        .map(|c| match c {
            Col::Trend => Constraint::Min(c.width()),
            c => Constraint::Length(c.width()),
        })
        .collect();
    let head = Row::new(cols.iter().map(|c| {
        let t = c.title(app.bits);
        let mut s = Style::default().add_modifier(Modifier::BOLD);
        if *c == app.sort {
            s = s.add_modifier(Modifier::UNDERLINED);
        }
        // Numbers and their titles line up on the right.
        if c.numeric() && *c != Col::Trend {
            Cell::from(Line::from(t).right_aligned()).style(s)
        } else {
            Cell::from(t).style(s)
        }
    }));
    let body = rows.iter().map(|r| {
        let red = r.errors.is_some_and(|e| e > 0.0) || (r.state != "ACTIVE" && !r.state.is_empty());
        let row = Row::new(cols.iter().map(|c| {
            let text = cell(app, model, r, *c, trend_width);
            if c.numeric() && *c != Col::Trend {
                Cell::from(Line::from(text).right_aligned())
            } else {
                Cell::from(text)
            }
        }));
        if red {
            row.style(style(app, Color::Red))
        } else {
            row
        }
    });
    let table = Table::new(body, widths)
        .header(head)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default();
    if !all_rows {
        state.select(
            app.selected
                .as_ref()
                .and_then(|k| rows.iter().position(|r| r.device == k.0 && r.port == k.1)),
        );
    }
    f.render_stateful_widget(table, area, &mut state);
}

/// Rows of the ports table kept above an open detail pane (header + 3).
const TABLE_WITH_DETAIL: u16 = 4;

/// Cells around a counter's name in the detail pane: ` ` rate(7) `/s` and a gap of 2.
const DETAIL_RATE: u16 = 12;

/// (name width, counters per line) for the detail pane: whole names where
/// they fit, else two columns of shortened names.
fn detail_layout(r: &PortRow, width: u16) -> (usize, usize) {
    let longest = r
        .counters
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut name = longest.min(31) as u16;
    let mut per_line = width / (name + DETAIL_RATE);
    if per_line < 2 && width >= 2 * (20 + DETAIL_RATE) {
        name = width / 2 - DETAIL_RATE;
        per_line = 2;
    }
    (usize::from(name), usize::from(per_line.max(1)))
}

/// The detail pane's lines: every counter of the selected port with its rate.
fn detail_lines(r: &PortRow, width: u16) -> Vec<Line<'static>> {
    let (name_w, per_line) = detail_layout(r, width);
    let cell = |c: &super::model::CounterRate| {
        let rate = c.rate.map_or("-".into(), human);
        let name: String = c.name.chars().take(name_w).collect();
        format!("{name:<name_w$} {rate:>7}/s  ")
    };
    r.counters
        .chunks(per_line)
        .map(|chunk| Line::from(chunk.iter().map(cell).collect::<String>()))
        .collect()
}

fn selected_row<'a>(app: &App, model: &'a Model) -> Option<&'a PortRow> {
    let k = app.selected.as_ref()?;
    model
        .ports
        .iter()
        .find(|r| r.device == k.0 && r.port == k.1)
}

fn detail(f: &mut Frame, area: Rect, app: &App, model: &Model) {
    let Some(r) = selected_row(app, model) else {
        return;
    };
    let lines = detail_lines(r, area.width);
    let room = usize::from(area.height.saturating_sub(1));
    // Scrolled no further than the last page.
    let scroll = usize::from(app.detail_scroll).min(lines.len().saturating_sub(room));
    let more = if lines.len() > room {
        format!(
            " lines {}-{} of {}, PgUp/PgDn",
            scroll + 1,
            (scroll + room).min(lines.len()),
            lines.len()
        )
    } else {
        String::new()
    };
    let title = format!(
        " {}/{} {} — every counter, per second{more} (Enter closes) ",
        r.device, r.port, r.netdev
    );
    f.render_widget(
        Paragraph::new(lines)
            .scroll((scroll as u16, 0))
            .block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
}

fn severity_style(app: &App, sev: &str) -> Style {
    match sev {
        "critical" => style(app, Color::Red).add_modifier(Modifier::BOLD),
        "warning" => style(app, Color::Yellow),
        _ => Style::default(),
    }
}

fn place(device: &str, port: Option<u32>, priority: Option<u8>) -> String {
    let mut s = device.to_string();
    if let Some(p) = port {
        s.push_str(&format!("/{p}"));
    }
    if let Some(p) = priority {
        s.push_str(&format!(" prio {p}"));
    }
    s
}

fn strip_height(model: &Model, all: bool) -> u16 {
    let n = model.findings().len();
    let shown = if all { n } else { n.min(STRIP_LINES + 1) };
    shown.max(1) as u16 + 1
}

fn strip(f: &mut Frame, area: Rect, app: &App, model: &Model, all: bool) {
    let fs = model.findings();
    let mut lines: Vec<Line> = Vec::new();
    let limit = if all || fs.len() <= STRIP_LINES + 1 {
        fs.len()
    } else {
        STRIP_LINES
    };
    for x in &fs[..limit] {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<8} ", x.severity),
                severity_style(app, &x.severity),
            ),
            Span::raw(format!(
                "{:<22} {:<14} {}",
                x.id,
                place(x.place(), x.port, x.priority),
                x.summary
            )),
        ]));
    }
    if limit < fs.len() {
        lines.push(Line::from(format!(
            "… {} more: f for the findings view",
            fs.len() - limit
        )));
    }
    if fs.is_empty() {
        lines.push(Line::from("none active"));
    }
    let title = format!(" Findings ({}) ", fs.len());
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(title)),
        area,
    );
}

fn clock(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    // 2026-11-29T21:03:04Z → 21:03:04
    s.get(11..19).unwrap_or(&s).to_string()
}

fn table_view(f: &mut Frame, area: Rect, head: &[&str], rows: Vec<Vec<String>>, widths: &[u16]) {
    let constraints: Vec<Constraint> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i + 1 == widths.len() {
                Constraint::Min(*w)
            } else {
                Constraint::Length(*w)
            }
        })
        .collect();
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let table = Table::new(rows.into_iter().map(Row::new), constraints)
        .header(Row::new(head.iter().map(|h| Cell::from(*h).style(bold))));
    f.render_widget(table, area);
}

fn findings_view(f: &mut Frame, area: Rect, model: &Model) {
    let rows = model
        .findings()
        .iter()
        .map(|x| {
            vec![
                x.severity.clone(),
                x.id.clone(),
                place(x.place(), x.port, x.priority),
                clock(x.first_seen_unix_ms),
                clock(x.last_seen_unix_ms),
                x.summary.clone(),
            ]
        })
        .collect();
    table_view(
        f,
        area,
        &["SEVERITY", "ID", "WHERE", "FIRST", "LAST", "SUMMARY"],
        rows,
        &[8, 22, 14, 8, 8, 20],
    );
}

fn message(f: &mut Frame, area: Rect, text: &str) {
    f.render_widget(Paragraph::new(text.to_string()), area);
}

fn consumers_view(f: &mut Frame, area: Rect, model: &Model) {
    let Some(list) = &model.doc.consumers else {
        message(
            f,
            area,
            "no attribution data: this snapshot has no consumers section",
        );
        return;
    };
    let label = |c: &super::doc::Consumer, keys: &[&str]| {
        keys.iter()
            .find_map(|k| c.labels.get(*k).and_then(|v| v.as_str()))
            .unwrap_or("")
            .to_string()
    };
    let rows = list
        .iter()
        .map(|c| {
            let ports = c
                .ports
                .iter()
                .map(|p| {
                    let port = p.port.map_or(String::new(), |n| format!("/{n}"));
                    let qps = p.qps.map_or("-".into(), |q| q.to_string());
                    format!("{}{port}:{qps}", p.device)
                })
                .collect::<Vec<_>>()
                .join(" ");
            let procs = c
                .processes
                .iter()
                .map(|p| match p.pid {
                    Some(pid) => format!("{pid} {}", p.comm),
                    None => p.comm.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                c.kind.clone(),
                c.id.clone(),
                label(c, &["job_id", "pod", "unit"]),
                label(c, &["user", "namespace"]),
                ports,
                c.mr_bytes.map_or("-".into(), |b| human(b as f64)),
                procs,
            ]
        })
        .collect::<Vec<_>>();
    if rows.is_empty() {
        message(f, area, "no consumer holds RDMA resources now");
        return;
    }
    table_view(
        f,
        area,
        &[
            "KIND",
            "ID",
            "JOB/POD/UNIT",
            "USER/NS",
            "QPS dev/port:n",
            "MR B",
            "PROCESSES",
        ],
        rows,
        &[9, 14, 14, 10, 20, 6, 10],
    );
}

fn fabric_view(f: &mut Frame, area: Rect, model: &Model) {
    if model.fabric.is_empty() {
        message(
            f,
            area,
            "no fabric data: fabric mode is off or no switch port counters were read",
        );
        return;
    }
    let mut rows: Vec<_> = model.fabric.iter().collect();
    rows.sort_by(|a, b| {
        let k =
            |r: &super::model::FabricRow| (r.xmit_wait.unwrap_or(-1.0), r.errors.unwrap_or(-1.0));
        let (x, y) = (k(a), k(b));
        y.0.total_cmp(&x.0).then(y.1.total_cmp(&x.1))
    });
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                r.lid.to_string(),
                r.port.to_string(),
                opt(r.xmit_wait),
                opt(r.errors),
                opt(r.tx),
                r.node_desc.clone(),
            ]
        })
        .collect();
    table_view(
        f,
        area,
        &["LID", "PORT", "XMITWAIT/s", "ERR/s", "TX B/s", "SWITCH"],
        rows,
        &[6, 4, 10, 6, 7, 20],
    );
}

pub const HELP: &str = "\
keys
  p c f b, Tab   ports, consumers, findings, fabric view
  < >            sort by the previous / next column
  t x e n        sort by TX, RX, errors, name
  r              reverse the sort
  / text Enter   filter ports by device or netdev (Esc clears)
  Up Down j k    select a port; Enter opens its detail pane
  PgUp PgDn      scroll the detail pane
  u              bytes/s or bits/s
  space          pause (no new samples)
  ?              this help (any key closes it)
  q, Ctrl-C      quit

columns
  TX/RX from port_xmit_data/port_rcv_data x 4; PKT/s both directions
  ERR/s sum of the PMA error counters; RETX/s ACK timeouts, NAK
  sequence errors, adaptive retransmits; CNP/s sent + handled;
  ECN/s ECN-marked packets received; PAUSE% the most any priority
  of the port's netdev was paused over the interval";

fn help(f: &mut Frame, area: Rect) {
    let lines = HELP.lines().count() as u16 + 2;
    let width = HELP.lines().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 4;
    let r = Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(lines) / 2,
        width: width.min(area.width),
        height: lines.min(area.height),
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(HELP).block(Block::default().borders(Borders::ALL).title(" help ")),
        r,
    );
}

/// Draws one frame. `all` (batch): every port and finding, no overlays.
pub fn draw(f: &mut Frame, app: &App, model: &Model, all: bool) {
    let area = f.area();
    let head = header(app, model);
    let strip_h = strip_height(model, all);
    let detail_open = app.view == View::Ports && app.detail && !all;
    let detail_open = detail_open && selected_row(app, model).is_some();
    // An open detail pane takes the room, the table keeps the selected row.
    let (body_c, det_c) = if detail_open {
        (Constraint::Length(TABLE_WITH_DETAIL), Constraint::Min(2))
    } else {
        (Constraint::Min(3), Constraint::Length(0))
    };
    let [top, body, det, bottom] = Layout::vertical([
        Constraint::Length(head.len() as u16),
        body_c,
        det_c,
        Constraint::Length(strip_h),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(head), top);
    match app.view {
        View::Ports => ports(f, body, app, model, all),
        View::Consumers => consumers_view(f, body, model),
        View::Findings => findings_view(f, body, model),
        View::Fabric => fabric_view(f, body, model),
    }
    if detail_open {
        detail(f, det, app, model);
    }
    strip(f, bottom, app, model, all);
    if app.help && !all {
        help(f, area);
    }
}

/// The lines of a buffer, trailing blanks cut.
pub fn buffer_text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Rows a batch frame needs to show everything.
pub fn batch_height(app: &App, model: &Model) -> u16 {
    let head = header(app, model).len();
    let body = match app.view {
        View::Ports => model.ports.len(),
        View::Findings => model.findings().len(),
        View::Consumers => model.doc.consumers.as_ref().map_or(1, Vec::len),
        View::Fabric => model.fabric.len(),
    } + 1;
    (head + body.max(3)) as u16 + strip_height(model, true)
}

/// Every counter of every shown port, one a line with its value and its
/// rate in plain numbers (`--batch --detail`, for scripts).
pub fn detail_text(app: &App, model: &Model) -> String {
    let mut out = String::new();
    for r in app.rows(&model.ports) {
        out.push_str(&format!("{}/{} {}\n", r.device, r.port, r.netdev));
        for c in &r.counters {
            let rate = c.rate.map_or("-".to_string(), |x| format!("{x:.2}/s"));
            out.push_str(&format!("  {:<34} {:>20} {:>18}\n", c.name, c.value, rate));
        }
    }
    out
}
