//! What the operator chose: the view, the sort, the filter, the selection;
//! and what a key does to it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::PortRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Ports,
    Consumers,
    Findings,
    Fabric,
}

impl View {
    /// The view a `--view` name stands for.
    pub fn from_name(name: &str) -> Option<View> {
        match name {
            "ports" => Some(View::Ports),
            "consumers" => Some(View::Consumers),
            "findings" => Some(View::Findings),
            "fabric" => Some(View::Fabric),
            _ => None,
        }
    }
}

/// The ports table's columns, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Device,
    Port,
    Netdev,
    LinkLayer,
    State,
    Speed,
    Tx,
    Rx,
    Pkts,
    Errors,
    Retransmits,
    Cnp,
    Ecn,
    Pause,
    Trend,
}

pub const COLUMNS: [Col; 15] = [
    Col::Device,
    Col::Port,
    Col::Netdev,
    Col::LinkLayer,
    Col::State,
    Col::Speed,
    Col::Tx,
    Col::Rx,
    Col::Pkts,
    Col::Errors,
    Col::Retransmits,
    Col::Cnp,
    Col::Ecn,
    Col::Pause,
    Col::Trend,
];

impl Col {
    pub fn title(self, bits: bool) -> &'static str {
        match self {
            Col::Device => "DEVICE",
            Col::Port => "PORT",
            Col::Netdev => "NETDEV",
            Col::LinkLayer => "LL",
            Col::State => "STATE",
            Col::Speed => "SPEED",
            Col::Tx if bits => "TX b/s",
            Col::Tx => "TX B/s",
            Col::Rx if bits => "RX b/s",
            Col::Rx => "RX B/s",
            Col::Pkts => "PKT/s",
            Col::Errors => "ERR/s",
            Col::Retransmits => "RETX/s",
            Col::Cnp => "CNP/s",
            Col::Ecn => "ECN/s",
            Col::Pause => "PAUSE%",
            Col::Trend => "TREND",
        }
    }

    /// Width in cells (the trend takes what is left).
    pub fn width(self) -> u16 {
        match self {
            Col::Device | Col::Netdev => 8,
            Col::Port | Col::LinkLayer => 4,
            Col::State | Col::Errors | Col::Retransmits | Col::Cnp | Col::Ecn | Col::Pause => 6,
            Col::Speed | Col::Tx | Col::Rx | Col::Pkts => 7,
            Col::Trend => 5,
        }
    }

    pub fn numeric(self) -> bool {
        !matches!(
            self,
            Col::Device | Col::Netdev | Col::LinkLayer | Col::State | Col::Speed
        )
    }

    fn value(self, r: &PortRow) -> Option<f64> {
        match self {
            Col::Port => Some(f64::from(r.port)),
            Col::Tx => r.tx,
            Col::Rx => r.rx,
            // The trend sorts by what it draws: TX+RX now.
            Col::Trend => r.tx.map(|t| t + r.rx.unwrap_or(0.0)),
            Col::Pkts => r.pkts,
            Col::Errors => r.errors,
            Col::Retransmits => r.retransmits,
            Col::Cnp => r.cnp,
            Col::Ecn => r.ecn,
            Col::Pause => r.pause_percent,
            _ => None,
        }
    }

    fn text(self, r: &PortRow) -> &str {
        match self {
            Col::Netdev => &r.netdev,
            Col::LinkLayer => &r.link_layer,
            Col::State => &r.state,
            Col::Speed => &r.speed,
            _ => &r.device,
        }
    }
}

/// Order of names with numbers in them as a person reads them: mlx5_2 < mlx5_10.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let cut = s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        (s[..cut].to_string(), s[cut..].parse::<u64>().ok())
    };
    split(a).cmp(&split(b)).then_with(|| a.cmp(b))
}

#[derive(Debug, Clone)]
pub struct App {
    pub view: View,
    pub sort: Col,
    /// Numbers sort largest first, names A→Z; `r` flips either.
    pub reverse: bool,
    pub filter: String,
    /// Typing a filter (after `/`).
    pub editing: bool,
    /// (device, port) of the selected row, kept across refreshes.
    pub selected: Option<(String, u32)>,
    pub detail: bool,
    /// First line of the detail pane shown.
    pub detail_scroll: u16,
    pub paused: bool,
    pub help: bool,
    pub bits: bool,
    pub color: bool,
    /// Why the last frame could not be had, if it could not.
    pub error: Option<String>,
    pub origin: String,
    pub refresh_secs: f64,
}

impl App {
    pub fn new(origin: String, refresh_secs: f64, color: bool) -> App {
        App {
            view: View::Ports,
            sort: Col::Device,
            reverse: false,
            filter: String::new(),
            editing: false,
            selected: None,
            detail: false,
            detail_scroll: 0,
            paused: false,
            help: false,
            bits: false,
            color,
            error: None,
            origin,
            refresh_secs,
        }
    }

    /// The rows to show: filtered by name (device, netdev), sorted.
    pub fn rows<'a>(&self, rows: &'a [PortRow]) -> Vec<&'a PortRow> {
        let f = self.filter.to_lowercase();
        let mut out: Vec<&PortRow> = rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.device.to_lowercase().contains(&f)
                    || r.netdev.to_lowercase().contains(&f)
            })
            .collect();
        let col = self.sort;
        out.sort_by(|a, b| {
            let by_name = natural_cmp(&a.device, &b.device).then(a.port.cmp(&b.port));
            let o = if col.numeric() && col != Col::Port {
                // Largest first; absent values last.
                let (x, y) = (col.value(a), col.value(b));
                match (x, y) {
                    (Some(x), Some(y)) => y.total_cmp(&x),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
            } else if col == Col::Device || col == Col::Port {
                std::cmp::Ordering::Equal
            } else {
                natural_cmp(col.text(a), col.text(b))
            };
            let o = if col == Col::Port {
                a.port.cmp(&b.port).then(by_name)
            } else {
                o.then(by_name)
            };
            if self.reverse { o.reverse() } else { o }
        });
        out
    }

    fn move_selection(&mut self, rows: &[&PortRow], by: isize) {
        if rows.is_empty() {
            self.selected = None;
            return;
        }
        let at = self
            .selected
            .as_ref()
            .and_then(|k| rows.iter().position(|r| r.device == k.0 && r.port == k.1));
        let next = match at {
            None => 0,
            Some(i) => (i as isize + by).clamp(0, rows.len() as isize - 1) as usize,
        };
        self.selected = Some(rows[next].key());
    }

    /// Applies one key; true when the operator asked to quit.
    pub fn key(&mut self, k: KeyEvent, ports: &[PortRow]) -> bool {
        let ctrl_c = k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c');
        if ctrl_c {
            return true;
        }
        if self.editing {
            match k.code {
                KeyCode::Enter => self.editing = false,
                KeyCode::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if self.filter.len() < 64 => self.filter.push(c),
                _ => {}
            }
            return false;
        }
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            return k.code == KeyCode::Char('q');
        }
        let pos = |c: Col| COLUMNS.iter().position(|x| *x == c).unwrap_or(0);
        match k.code {
            KeyCode::Char('q') => return true,
            KeyCode::Char('?') | KeyCode::Char('h') => self.help = true,
            KeyCode::Char(' ') => self.paused = !self.paused,
            KeyCode::Char('p') => self.view = View::Ports,
            KeyCode::Char('c') => self.view = View::Consumers,
            KeyCode::Char('f') => self.view = View::Findings,
            KeyCode::Char('b') => self.view = View::Fabric,
            KeyCode::Tab => {
                self.view = match self.view {
                    View::Ports => View::Consumers,
                    View::Consumers => View::Findings,
                    View::Findings => View::Fabric,
                    View::Fabric => View::Ports,
                }
            }
            KeyCode::Char('u') => self.bits = !self.bits,
            KeyCode::Char('>') | KeyCode::Char('.') => {
                self.sort = COLUMNS[(pos(self.sort) + 1) % COLUMNS.len()];
            }
            KeyCode::Char('<') | KeyCode::Char(',') => {
                self.sort = COLUMNS[(pos(self.sort) + COLUMNS.len() - 1) % COLUMNS.len()];
            }
            KeyCode::Char('r') => self.reverse = !self.reverse,
            // Straight to the columns operators sort by most.
            KeyCode::Char('t') => self.sort = Col::Tx,
            KeyCode::Char('x') => self.sort = Col::Rx,
            KeyCode::Char('e') => self.sort = Col::Errors,
            KeyCode::Char('n') => self.sort = Col::Device,
            KeyCode::Char('/') => {
                self.editing = true;
                self.filter.clear();
            }
            KeyCode::Esc => {
                self.filter.clear();
                self.detail = false;
            }
            KeyCode::Enter => {
                self.detail = !self.detail;
                self.detail_scroll = 0;
            }
            KeyCode::PageDown => self.detail_scroll = self.detail_scroll.saturating_add(10),
            KeyCode::PageUp => self.detail_scroll = self.detail_scroll.saturating_sub(10),
            KeyCode::Down | KeyCode::Char('j') => {
                let rows = self.rows(ports);
                self.move_selection(&rows, 1);
                self.detail_scroll = 0;
            }
            KeyCode::Up | KeyCode::Char('k') => {
                let rows = self.rows(ports);
                self.move_selection(&rows, -1);
                self.detail_scroll = 0;
            }
            _ => {}
        }
        false
    }
}
