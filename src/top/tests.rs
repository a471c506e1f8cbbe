use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;

use super::app::{App, Col, View, natural_cmp};
use super::doc::{self, Doc};
use super::model::Model;
use super::render::{self, human, sparkline};

/// A snapshot document as the agent writes one: two ports, one finding.
fn doc(ms: u64, xmit_words: u64, rcv_words: u64, errors: u64, pause_us: u64) -> Doc {
    let v = json!({
        "schema_version": 1,
        "hostname": "gpu001",
        "timestamp_unix_ms": ms,
        "devices": [
            {"name": "mlx5_10", "node_type": {"value": 1, "name": "CA"}, "ports": [{
                "port": 1, "link_layer": "InfiniBand", "netdev": "ib0",
                "state": {"value": 4, "name": "ACTIVE"},
                "rate": {"gbit_per_sec": 400.0, "width": 4, "speed": "NDR"},
                "counters": {
                    "port_xmit_data": {"value": xmit_words},
                    "port_rcv_data": {"value": rcv_words},
                    "port_xmit_packets": {"value": xmit_words / 1024},
                    "port_rcv_packets": {"value": rcv_words / 1024},
                    "symbol_error": {"value": errors},
                    "port_rcv_errors": {"value": 7}
                },
                "hw_counters": {"local_ack_timeout_err": {"value": errors * 2}}
            }]},
            {"name": "mlx5_2", "ports": [{
                "port": 1, "link_layer": "Ethernet", "netdev": "eth2",
                "state": {"value": 4, "name": "ACTIVE"},
                "rate": {"gbit_per_sec": 100.0, "width": 4},
                "counters": {"port_xmit_data": {"value": 5000}, "port_rcv_data": {"value": 9000}},
                "hw_counters": {"np_cnp_sent": {"value": pause_us / 100}, "np_ecn_marked_roce_packets": {"value": 3}}
            }]}
        ],
        "netdevs": [{"name": "eth2", "ethtool_stats": [
            {"name": "rx_prio3_pause_duration", "value": pause_us},
            {"name": "tx_prio3_pause_duration", "value": 0}
        ]}],
        "findings": [{
            "id": "symbol_errors", "severity": "warning", "device": "mlx5_10", "port": 1,
            "priority": null, "summary": "mlx5_10/1: 60 symbol errors per minute",
            "evidence": {}, "first_seen_unix_ms": 1_795_986_000_000_u64,
            "last_seen_unix_ms": 1_795_986_062_000_u64
        }],
        "unknown_future_section": {"ignored": true}
    });
    doc::parse(v.to_string().as_bytes()).unwrap()
}

/// Two documents 2 s apart: mlx5_10 sends 2 MB/s (500k words/s) and
/// receives 8 kB/s, gets 1 symbol error per second; eth2 paused 25 %.
fn model() -> Model {
    let mut m = Model::default();
    m.update(doc(1_795_986_060_000, 1_000, 0, 10, 1_000_000));
    m.update(doc(1_795_986_062_000, 1_001_000, 4_000, 12, 1_500_000));
    m
}

fn app() -> App {
    App::new("local /sys".into(), 1.0, true)
}

fn screen(app: &App, m: &Model, w: u16, h: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app, m, false)).unwrap();
    let buf = t.backend().buffer().clone();
    let text = render::buffer_text(&buf);
    (text.lines().map(str::to_string).collect(), buf)
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

#[test]
fn rates_come_from_two_documents() {
    let m = model();
    assert_eq!(m.interval, Some(2.0));
    let r = m.ports.iter().find(|r| r.device == "mlx5_10").unwrap();
    assert_eq!(r.tx, Some(2_000_000.0)); // 1_000_000 words × 4 B / 2 s
    assert_eq!(r.rx, Some(8_000.0));
    assert_eq!(r.pkts, Some((977.0 + 3.0) / 2.0));
    assert_eq!(r.errors, Some(1.0)); // symbol_error +2, port_rcv_errors +0
    assert_eq!(r.retransmits, Some(2.0));
    assert_eq!(r.speed, "400G 4x");
    let e = m.ports.iter().find(|r| r.device == "mlx5_2").unwrap();
    assert_eq!(e.pause_percent, Some(25.0)); // 500_000 µs over 2 s
    assert_eq!(e.cnp, Some(2_500.0));
    assert_eq!(e.ecn, Some(0.0));
    assert_eq!(e.retransmits, None, "no retransmit counter: absent, not 0");
    assert_eq!(m.history[&("mlx5_10".to_string(), 1)].len(), 1);
}

#[test]
fn first_document_has_no_rates_and_a_repeat_changes_nothing() {
    let mut m = Model::default();
    m.update(doc(1_000, 1_000, 0, 10, 0));
    assert!(m.ports.iter().all(|r| r.tx.is_none() && r.errors.is_none()));
    m.update(doc(2_000, 2_000, 0, 10, 0));
    assert_eq!(m.ports[0].tx, Some(4_000.0));
    // The same document again (a remote agent polled less often than top).
    m.update(doc(2_000, 9_000, 0, 10, 0));
    assert_eq!(m.ports[0].tx, Some(4_000.0));
    assert_eq!(m.frames, 2);
}

#[test]
fn a_reset_or_saturated_counter_has_no_rate() {
    let mut m = Model::default();
    m.update(doc(1_000, 5_000, 0, 10, 0));
    m.update(doc(2_000, 100, 0, 10, 0));
    assert_eq!(m.ports[0].tx, None, "went down: reset");
    let mut d = doc(3_000, 4_294_967_295, 0, 10, 0);
    d.devices[0].ports[0]
        .counters
        .get_mut("port_xmit_data")
        .unwrap()
        .flag = Some("saturated".into());
    m.update(d);
    assert_eq!(m.ports[0].tx, None, "saturated");
}

#[test]
fn ports_view_cells_at_80x24() {
    let (lines, buf) = screen(&app(), &model(), 80, 24);
    let want = [
        "rdma-monitor top  gpu001  local /sys  rates over 2.00s, refresh 1s",
        "[p]orts [c]onsumers [f]indings fa[b]ric  sort DEVICE  ? help",
        "DEVICE   PORT STATE   TX B/s  RX B/s   PKT/s  ERR/s RETX/s  CNP/s PAUSE% TREND",
        "mlx5_2      1 ACTIVE       0       0       -      -      -   2.5k   25.0",
        "mlx5_10     1 ACTIVE    2.0M    8.0k     490    1.0    2.0      -      - █",
    ];
    assert_eq!(lines[..5], want);
    assert_eq!(
        lines[22],
        " Findings (1) ──────────────────────────────────────────────────────────────────"
    );
    assert_eq!(
        lines[23],
        "warning  symbol_errors          mlx5_10/1      mlx5_10/1: 60 symbol errors per minute"
            [..80]
            .trim_end()
    );
    // An erroring port is red; the warning is yellow.
    assert_eq!(buf[(0, 4)].fg, Color::Red);
    assert_eq!(buf[(0, 23)].fg, Color::Yellow);
}

#[test]
fn no_color_draws_no_colour() {
    let mut a = app();
    a.color = false;
    let (_, buf) = screen(&a, &model(), 80, 24);
    assert!(
        buf.content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
}

#[test]
fn wide_terminal_shows_every_column() {
    let (lines, _) = screen(&app(), &model(), 120, 36);
    assert_eq!(
        lines[2],
        "DEVICE   PORT NETDEV   LL   STATE  SPEED    TX B/s  RX B/s   PKT/s  ERR/s RETX/s  CNP/s  ECN/s PAUSE% TREND"
    );
    assert_eq!(
        lines[4],
        "mlx5_10     1 ib0      IB   ACTIVE 400G 4x    2.0M    8.0k     490    1.0    2.0      -      -      - █"
    );
}

#[test]
fn sorting_filtering_and_the_detail_pane() {
    let m = model();
    let mut a = app();
    a.key(key(KeyCode::Char('t')), &m.ports);
    assert_eq!(a.sort, Col::Tx);
    let (lines, _) = screen(&a, &m, 80, 24);
    assert!(
        lines[3].starts_with("mlx5_10"),
        "largest TX first: {lines:?}"
    );
    a.key(key(KeyCode::Char('r')), &m.ports);
    let (lines, _) = screen(&a, &m, 80, 24);
    assert!(lines[3].starts_with("mlx5_2"), "reversed: {lines:?}");
    // `>` walks the columns: after TX comes RX.
    a.key(key(KeyCode::Char('>')), &m.ports);
    assert_eq!(a.sort, Col::Rx);
    for c in "eth2".chars() {
        a.key(key(KeyCode::Char('/')), &m.ports);
        a.filter.clear();
        a.key(key(KeyCode::Char(c)), &m.ports);
    }
    a.filter = "eth2".into();
    a.editing = false;
    assert_eq!(a.rows(&m.ports).len(), 1);
    a.key(key(KeyCode::Esc), &m.ports);
    assert_eq!(a.rows(&m.ports).len(), 2);
    // Select mlx5_10 and open its detail pane: every counter with its rate.
    a.sort = Col::Device;
    a.reverse = false;
    a.key(key(KeyCode::Down), &m.ports);
    a.key(key(KeyCode::Down), &m.ports);
    assert_eq!(a.selected, Some(("mlx5_10".into(), 1)));
    a.key(key(KeyCode::Enter), &m.ports);
    let (lines, _) = screen(&a, &m, 80, 24);
    let pane = lines
        .iter()
        .position(|l| l.contains("every counter"))
        .unwrap();
    assert_eq!(
        lines[pane],
        " mlx5_10/1 ib0 — every counter, per second (Enter closes) ──────────────────────"
    );
    assert_eq!(
        lines[pane + 1],
        "port_rcv_data            2.0k/s  port_rcv_errors             0/s"
    );
    assert!(
        lines[pane + 1..]
            .iter()
            .any(|l| l.contains("local_ack_timeout_err"))
    );
}

#[test]
fn views_findings_consumers_fabric_and_help() {
    let m = model();
    let mut a = app();
    a.key(key(KeyCode::Char('f')), &m.ports);
    let (lines, _) = screen(&a, &m, 120, 24);
    assert_eq!(
        lines[2],
        "SEVERITY ID                     WHERE          FIRST    LAST     SUMMARY"
    );
    assert_eq!(
        lines[3],
        "warning  symbol_errors          mlx5_10/1      21:00:00 21:01:02 mlx5_10/1: 60 symbol errors per minute"
    );
    a.key(key(KeyCode::Char('c')), &m.ports);
    let (lines, _) = screen(&a, &m, 100, 24);
    assert_eq!(
        lines[2],
        "no attribution data: this snapshot has no consumers section"
    );
    a.key(key(KeyCode::Char('b')), &m.ports);
    let (lines, _) = screen(&a, &m, 100, 24);
    assert!(lines[2].starts_with("no fabric data"), "{lines:?}");
    a.key(key(KeyCode::Char('?')), &m.ports);
    let (lines, _) = screen(&a, &m, 80, 24);
    assert!(
        lines.iter().any(|l| l.contains("q, Ctrl-C      quit")),
        "{lines:?}"
    );
    // Any key closes the help, q quits, so does Ctrl-C.
    assert!(!a.key(key(KeyCode::Char('x')), &m.ports));
    assert!(!a.help);
    assert_eq!(a.view, View::Fabric);
    assert!(a.key(key(KeyCode::Char('q')), &m.ports));
    assert!(a.key(
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        &m.ports
    ));
}

#[test]
fn consumers_section_renders_when_present() {
    let mut d = doc(1_000, 0, 0, 0, 0);
    d.consumers = Some(
        serde_json::from_value(json!([{
            "kind": "slurm_job", "id": "4242",
            "labels": {"job_id": "4242", "user": "alice", "pod": null},
            "ports": [{"device": "mlx5_0", "port": 1, "qps": 12}],
            "mr_bytes": 1_073_741_824_u64,
            "processes": [{"pid": 981, "comm": "python"}]
        }]))
        .unwrap(),
    );
    let mut m = Model::default();
    m.update(d);
    let mut a = app();
    a.view = View::Consumers;
    let (lines, _) = screen(&a, &m, 100, 24);
    assert_eq!(
        lines[2],
        "KIND      ID             JOB/POD/UNIT   USER/NS    QPS dev/port:n       MR B   PROCESSES"
    );
    assert_eq!(
        lines[3],
        "slurm_job 4242           4242           alice      mlx5_0/1:12          1.1G   981 python"
    );
}

#[test]
fn fabric_view_lists_hottest_switch_ports_first() {
    let mut m = Model::default();
    m.update(fabric(1_000, 1_000, 100, 100));
    m.update(fabric(2_000, 2_000, 150, 90_100));
    assert_eq!(m.fabric.len(), 2, "switch ports with counters only");
    let mut a = app();
    a.view = View::Fabric;
    let (lines, _) = screen(&a, &m, 80, 24);
    assert_eq!(lines[2], "LID    PORT XMITWAIT/s ERR/s  TX B/s  SWITCH");
    assert_eq!(lines[3], "3      7    90.0k      -      360k    leaf01");
    assert_eq!(lines[4], "3      5    50         0      -       leaf01");
}

/// A snapshot whose fabric counters were read at `read_ms`.
fn fabric(ms: u64, read_ms: u64, wait_a: u64, wait_b: u64) -> Doc {
    let v = json!({"timestamp_unix_ms": ms, "mad": {"fabric_counters_unix_ms": read_ms, "fabric_counters": [
        {"node_guid": 1, "node_desc": "leaf01", "node_type": 2, "lid": 3, "port": 5,
         "pma": {"counters": {"port_xmit_wait": wait_a, "symbol_error": 0}, "saturated": []}},
        {"node_guid": 1, "node_desc": "leaf01", "node_type": 2, "lid": 3, "port": 7,
         "pma": {"counters": {"port_xmit_wait": wait_b, "port_xmit_data": wait_b}, "saturated": []}},
        {"node_guid": 9, "node_desc": "gpu001 mlx5_0", "node_type": 1, "lid": 9, "port": 1,
         "pma": {"counters": {"port_xmit_wait": 1_000_000}}},
        {"node_guid": 2, "node_desc": "spine", "node_type": 2, "lid": 4, "port": 1,
         "error": "timeout"}
    ]}});
    doc::parse(v.to_string().as_bytes()).unwrap()
}

#[test]
fn fabric_rates_are_over_the_reads_own_times_not_the_documents() {
    // The agent reads the fabric every fabric.interval (here 10 s); top
    // refreshes every second: the documents in between repeat the last read.
    let mut m = Model::default();
    m.update(fabric(1_000, 500, 0, 0));
    m.update(fabric(2_000, 500, 0, 0));
    assert_eq!(m.fabric[1].xmit_wait, None, "one read: no rate yet");
    m.update(fabric(3_000, 10_500, 0, 50_000));
    let wait = |m: &Model| m.fabric.iter().find(|r| r.port == 7).unwrap().xmit_wait;
    assert_eq!(
        wait(&m),
        Some(5_000.0),
        "50,000 ticks over the 10 s between reads"
    );
    m.update(fabric(4_000, 10_500, 0, 50_000));
    assert_eq!(
        wait(&m),
        Some(5_000.0),
        "the same read again keeps its rates"
    );
    m.update(fabric(5_000, 20_500, 0, 60_000));
    assert_eq!(wait(&m), Some(1_000.0));
    // An agent that does not say when it read them: no rates, not wrong ones.
    let mut old = fabric(6_000, 0, 0, 70_000);
    old.mad.as_mut().unwrap().fabric_counters_unix_ms = None;
    m.update(old);
    assert_eq!(wait(&m), None);
}

#[test]
fn batch_frame_is_plain_text_with_every_row() {
    let m = model();
    let mut a = app();
    a.color = false;
    let text = super::frame_text(&a, &m, 120);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert_eq!(
        lines[4],
        "mlx5_10     1 ib0      IB   ACTIVE 400G 4x    2.0M    8.0k     490    1.0    2.0      -      -      - █"
    );
    assert!(lines[6].starts_with("warning  symbol_errors"));
}

#[test]
fn units_and_sparklines() {
    assert_eq!(human(0.0), "0");
    assert_eq!(human(0.25), "0.2");
    assert_eq!(human(999.0), "999");
    assert_eq!(human(999.6), "1.0k");
    assert_eq!(human(12_345.0), "12.3k");
    assert_eq!(human(123_456_789.0), "123M");
    assert_eq!(human(4.2e12), "4.2T");
    assert_eq!(sparkline([0.0, 1.0, 4.0, 8.0].into_iter(), 3), "▂▅█");
    assert_eq!(sparkline([0.0, 0.0].into_iter(), 5), "  ");
    assert!(natural_cmp("mlx5_2", "mlx5_10").is_lt());
    assert!(natural_cmp("mlx5_10", "mlx4_0").is_gt());
}

#[test]
fn a_malformed_document_is_an_error_not_a_panic() {
    assert!(doc::parse(b"{\"devices\": 7}").is_err());
    assert!(doc::parse(b"\x00\xff").is_err());
    let d = doc::parse(b"{}").unwrap();
    assert!(d.devices.is_empty() && d.consumers.is_none());
}

#[test]
fn detail_pane_scrolls_when_the_counters_do_not_fit() {
    // 40 counters with long names on one port, at 80x24.
    let counters: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| {
            (
                format!("counter_{i:02}_with_a_rather_long_name"),
                json!({"value": i}),
            )
        })
        .collect();
    let d = json!({"timestamp_unix_ms": 1, "devices": [{"name": "mlx5_0", "ports": [
        {"port": 1, "counters": counters}]}]});
    let mut m = Model::default();
    m.update(doc::parse(d.to_string().as_bytes()).unwrap());
    let mut a = app();
    a.key(key(KeyCode::Down), &m.ports);
    a.key(key(KeyCode::Enter), &m.ports);
    let (lines, _) = screen(&a, &m, 80, 24);
    // Two columns of names cut to 28 cells; 20 lines, 15 shown.
    assert_eq!(
        lines[6],
        " mlx5_0/1  — every counter, per second lines 1-15 of 20, PgUp/PgDn (Enter closes) "
            .chars()
            .take(80)
            .collect::<String>()
    );
    assert_eq!(
        lines[7],
        "counter_00_with_a_rather_lon       -/s  counter_01_with_a_rather_lon       -/s"
    );
    a.key(key(KeyCode::PageDown), &m.ports);
    let (lines, _) = screen(&a, &m, 80, 24);
    assert!(lines[6].contains("lines 6-20 of 20"), "{lines:?}");
    assert_eq!(
        lines[21],
        "counter_38_with_a_rather_lon       -/s  counter_39_with_a_rather_lon       -/s"
    );
}

#[test]
fn batch_detail_lists_every_counter_with_plain_rates() {
    let text = super::render::detail_text(&app(), &model());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "mlx5_2/1 eth2");
    assert_eq!(lines[5], "mlx5_10/1 ib0");
    let line = |name: &str, value: u64, rate: &str| format!("  {name:<34} {value:>20} {rate:>18}");
    // Raw counters in their own unit: port_xmit_data counts 4-byte words.
    let has = |l: String| lines.contains(&l.as_str());
    assert!(
        has(line("port_xmit_data", 1_001_000, "500000.00/s")),
        "{text}"
    );
    assert!(has(line("local_ack_timeout_err", 24, "2.00/s")), "{text}");
}

#[test]
fn view_flag_picks_the_view_a_batch_frame_shows() {
    let args = |v: &[&str]| super::parse_args(v.iter().map(std::ffi::OsString::from));
    let a = args(&["--batch", "1", "--view", "consumers"])
        .unwrap()
        .unwrap();
    assert_eq!(a.view, Some(View::Consumers));
    assert_eq!(
        args(&["--view", "fabric"]).unwrap().unwrap().view,
        Some(View::Fabric)
    );
    assert_eq!(args(&[]).unwrap().unwrap().view, None);
    let e = args(&["--view", "jobs"]).unwrap_err().to_string();
    assert!(e.contains("not one of ports, consumers"), "{e}");

    let mut d = doc(1_000, 0, 0, 0, 0);
    d.consumers = Some(
        serde_json::from_value(json!([{"kind": "process", "id": "981",
            "ports": [{"device": "rxe0", "port": 1, "qps": 1}],
            "processes": [{"pid": 981, "comm": "ibv_rc_pingpong"}]}]))
        .unwrap(),
    );
    let mut m = Model::default();
    m.update(d);
    let mut a = app();
    a.color = false;
    a.view = View::Consumers;
    let text = super::frame_text(&a, &m, 100);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[3],
        "process   981                                      rxe0/1:1             -      981 ibv_rc_pingpong",
        "{text}"
    );
}

/// The snapshot of an agent since 2026-11-30: the fabric summary only; the
/// counters of `fabric(..)` are the detail document of the sweep at `sweep_ms`.
fn summary_and_detail(ms: u64, sweep_ms: u64, wait_b: u64) -> (Doc, Vec<u8>) {
    let mut detail = json!({"sweep_unix_ms": sweep_ms});
    let full = json!({"timestamp_unix_ms": ms, "mad": {"fabric_counters_unix_ms": sweep_ms, "fabric_counters": [
        {"node_guid": 1, "node_desc": "leaf01", "node_type": 2, "lid": 3, "port": 7,
         "pma": {"counters": {"port_xmit_wait": wait_b}, "saturated": []}}]}});
    detail["fabric_counters"] = full["mad"]["fabric_counters"].clone();
    detail["fabric_counters_unix_ms"] = json!(sweep_ms);
    let main = json!({"timestamp_unix_ms": ms, "mad": {"fabric_counters_unix_ms": sweep_ms,
        "fabric_summary": {"sweep_unix_ms": sweep_ms, "nodes": 3, "detail_file": "fabric-1.json"}}});
    (
        doc::parse(main.to_string().as_bytes()).unwrap(),
        detail.to_string().into_bytes(),
    )
}

#[test]
fn the_fabric_view_reads_the_detail_once_per_sweep() {
    use super::source::Detail;
    let mut m = Model::default();
    let mut detail = Detail::default();
    let mut fetched = 0;
    for (ms, sweep_ms, wait) in [(1_000, 500, 0), (2_000, 500, 0), (3_000, 10_500, 50_000)] {
        let (mut d, body) = summary_and_detail(ms, sweep_ms, wait);
        detail
            .fill(&mut d, || {
                fetched += 1;
                Ok(body)
            })
            .unwrap();
        m.update(d);
    }
    assert_eq!(fetched, 2, "two sweeps, two fetches over three documents");
    assert_eq!(m.fabric.len(), 1);
    assert_eq!(m.fabric[0].xmit_wait, Some(5_000.0));
    // A detail that cannot be had is the frame's error, not an empty view.
    let (mut d, _) = summary_and_detail(4_000, 20_500, 0);
    let e = detail.fill(&mut d, || Err("http://x/fabric: HTTP 404".into()));
    assert_eq!(e, Err("http://x/fabric: HTTP 404".to_string()));
    // An older agent's snapshot has the counters inline: nothing is fetched.
    let mut old = fabric(5_000, 500, 0, 0);
    detail.fill(&mut old, || panic!("no fetch")).unwrap();
    assert_eq!(old.mad.unwrap().fabric_counters.len(), 4);
}

/// The RETR/s column sums the counters of the `retransmission_rate` finding
/// (the catalog's one table): bnxt `to_retransmits` and irdma `RetransSegs`
/// count, mlx5 `packet_seq_err` (a NAK sequence error, not a resend the
/// finding counts) does not, nor a PMA counter.
#[test]
fn retransmit_column_is_the_findings_table() {
    let d = |ms: u64, n: u64| {
        let v = json!({
            "schema_version": 1, "hostname": "h", "timestamp_unix_ms": ms,
            "devices": [{"name": "bnxt_re0", "ports": [{
                "port": 1,
                "counters": {"port_xmit_discards": {"value": n}},
                "hw_counters": {
                    "to_retransmits": {"value": n},
                    "RetransSegs": {"value": 10 * n},
                    "packet_seq_err": {"value": 100 * n}
                }
            }]}]
        });
        doc::parse(v.to_string().as_bytes()).unwrap()
    };
    let mut m = Model::default();
    m.update(d(1_000, 0));
    m.update(d(2_000, 1));
    assert_eq!(m.ports[0].retransmits, Some(11.0));
    let names: Vec<_> = super::model::retransmit_counters().collect();
    assert!(names.contains(&"to_retransmits") && !names.contains(&"packet_seq_err"));
}
