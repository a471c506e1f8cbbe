//! Renders 20,000 counter series with metrics-exporter-prometheus, shaped as
//! the agent's own build-and-render benchmark (benches/agent.rs, `big_labels`: 16 HCAs ×
//! 2 ports × driver counters, one family with device, port and counter
//! labels), and prints the median and range of 21 renders.

use metrics_exporter_prometheus::PrometheusBuilder;
use std::time::Instant;

fn main() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        let mut n = 0u64;
        'outer: for dev in 0..16 {
            let device = format!("mlx5_{dev}");
            for port in ["1", "2"] {
                for c in 0..700 {
                    let counter = format!("rx_prio{}_counter_{c}", c % 8);
                    metrics::counter!("rdma_port_hw_stat_total", "device" => device.clone(), "port" => port, "counter" => counter)
                        .absolute(n * 7919);
                    n += 1;
                    if n == 20_000 {
                        break 'outer;
                    }
                }
            }
        }
    });
    let mut times = Vec::new();
    let mut len = 0;
    for _ in 0..21 {
        let t = Instant::now();
        len = handle.render().len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let series = handle
        .render()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    println!(
        "metrics-exporter-prometheus: {series} series, {len} bytes, render median {:.1} ms (min {:.1}, max {:.1}) over 21 renders",
        times[10], times[0], times[20]
    );
}
