#!/usr/bin/env python3
"""Writes rdma-monitor.json, the Grafana dashboard (node and port overview).
Edit the panels here and rerun; tests/deploy/run.sh checks that every metric
the queries use exists in a real scrape of the agent."""
import json
import os

RATE = "$__rate_interval"
SEL = 'instance=~"$instance",device=~"$device"'
panels = []


def panel(title, exprs, unit="short", kind="timeseries", w=12, h=8, legend="{{device}}/{{port}}"):
    i = len(panels)
    panels.append({
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": (sum(p["gridPos"]["w"] for p in panels) % 24), "y": 0, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(65 + j), "expr": e, "legendFormat": l if l else legend}
                    for j, (e, l) in enumerate(exprs)],
    })


panel("Ports up", [(f"sum by (instance) (rdma_port_up{{{SEL}}})", "{{instance}} up"),
                   (f"count by (instance) (rdma_port_up{{{SEL}}})", "{{instance}} ports")], kind="stat", w=6, h=4)
panel("Findings by severity", [("sum by (severity) (rdma_findings{instance=~\"$instance\"})", "{{severity}}")], kind="stat", w=6, h=4)
panel("Link rate", [(f"rdma_port_rate_bytes_per_second{{{SEL}}} * 8", "")], unit="bps", kind="stat", w=12, h=4)
panel("Port state (4 = ACTIVE)", [(f"rdma_port_state{{{SEL}}}", ""), (f"rdma_port_physical_state{{{SEL}}}", "{{device}}/{{port}} phys")], kind="table", w=12)
panel("Active findings", [("rdma_finding{instance=~\"$instance\"}", "{{severity}} {{id}} {{device}}/{{port}}")], kind="table", w=12)
panel("Transmit throughput", [(f"rate(rdma_port_transmit_bytes_total{{{SEL}}}[{RATE}])", "")], unit="Bps")
panel("Receive throughput", [(f"rate(rdma_port_receive_bytes_total{{{SEL}}}[{RATE}])", "")], unit="Bps")
panel("Packets", [(f"rate(rdma_port_transmit_packets_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} tx"),
                  (f"rate(rdma_port_receive_packets_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} rx")], unit="pps")
panel("Link errors", [(f"rate(rdma_port_symbol_errors_total{{{SEL}}}[{RATE}]) * 60", "{{device}}/{{port}} symbol/min"),
                      (f"increase(rdma_port_link_downed_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} link downed"),
                      (f"increase(rdma_port_link_error_recovery_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} recoveries"),
                      (f"rate(rdma_port_receive_errors_total{{{SEL}}}[{RATE}]) * 60", "{{device}}/{{port}} rcv errors/min")])
panel("ECN / CNP", [(f"rate(rdma_congestion_cnp_sent_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} CNP sent"),
                    (f"rate(rdma_congestion_cnp_handled_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} CNP handled"),
                    (f"rate(rdma_congestion_ecn_marked_packets_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} ECN marked")], unit="pps")
panel("Congestion and drops", [(f"rate(rdma_port_transmit_wait_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} xmit wait ticks"),
                               (f"rate(rdma_port_transmit_discards_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} xmit discards"),
                               (f"rate(rdma_congestion_out_of_buffer_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} out of buffer")])
# Switch ports, once each however many nodes read them (max by port, as the
# RdmaTransmitWait alert): HCA ports have no
# documented tick, so no seconds (catalog::xmit_wait); their raw ticks are
# in "Congestion and drops".
panel("IB switch transmit wait: share of time a port had data and could not send",
      [('topk(10, max by (node_guid, node_desc, port) (rate(rdma_fabric_port_transmit_wait_seconds_total{instance=~"$instance"}[' + RATE + '])))', "{{node_desc}} port {{port}}")],
      unit="percentunit")
# Issue 13's families: transport, pause, drops per priority, PHY health, volume origin.
NSEL = 'instance=~"$instance"'
panel("Transport retransmissions", [(f"sum by (instance, device, port, kind) (rate(rdma_transport_retransmissions_total{{{SEL}}}[{RATE}]))", "{{device}}/{{port}} {{kind}}")], unit="ops")
panel("Transport timeouts and sequence errors", [(f"sum by (instance, device, port, kind) (rate(rdma_transport_timeouts_total{{{SEL}}}[{RATE}]))", "{{device}}/{{port}} timeout {{kind}}"),
                                                 (f"sum by (instance, device, port, kind) (rate(rdma_transport_sequence_errors_total{{{SEL}}}[{RATE}]))", "{{device}}/{{port}} sequence {{kind}}")], unit="ops")
panel("Transport errors (requester / responder)", [(f"sum by (instance, device, port, side, kind) (rate(rdma_transport_errors_total{{{SEL}}}[{RATE}]))", "{{device}}/{{port}} {{side}} {{kind}}")], unit="ops")
panel("RoCE slow restart (mlx5)", [(f"sum by (instance, device, port, kind) (rate(rdma_transport_slow_restart_events_total{{{SEL}}}[{RATE}]))", "{{device}}/{{port}} {{kind}}"),
                                   (f"rate(rdma_congestion_slow_restart_cnps_total{{{SEL}}}[{RATE}])", "{{device}}/{{port}} CNPs generated")], unit="ops")
panel("RDMA volume origin", [(f"rdma_port_volume_origin{{{SEL}}}", "{{device}}/{{port}} {{metric}}: {{origin}} {{counter}}")], kind="table", w=12)
panel("Time paused per priority (PFC) and link-level pause", [(f"rate(rdma_pfc_pause_duration_seconds_total{{{NSEL}}}[{RATE}])", "{{netdev}} prio {{priority}} {{direction}}"),
                                                             (f"rate(rdma_netdev_global_pause_duration_seconds_total{{{NSEL}}}[{RATE}])", "{{netdev}} link-level {{direction}}")], unit="percentunit")
# XOFF frames are pause requests, not drops: beside the time paused.
panel("Link-level pause (802.3x) XOFF frames", [(f"rate(rdma_netdev_global_pause_xoff_frames_total{{{NSEL}}}[{RATE}])", "{{netdev}} link-level XOFF {{direction}}")], unit="pps")
panel("Drops per priority and queue, pause storms", [(f"rate(rdma_netdev_priority_discards_total{{{NSEL}}}[{RATE}])", "{{netdev}} prio {{priority}} {{kind}}"),
                                                     (f"rate(rdma_netdev_cos_discards_total{{{NSEL}}}[{RATE}])", "{{netdev}} cos {{cos}}"),
                                                     (f"increase(rdma_netdev_pause_storm_events_total{{{NSEL}}}[{RATE}])", "{{netdev}} storm {{event}}")], unit="pps")
# Pre-FEC BER as the phy_ber finding computes it: corrected bits over the
# received bits where the driver counts them (bnxt rx_bits; mlx5 only with a
# 2026 patch), else over link speed x time, as the finding does.
CORRECTED = f"sum by (instance, netdev) (rate(rdma_netdev_fec_corrected_bits_total{{{NSEL}}}[{RATE}]))"
panel("PHY: pre-FEC bit error ratio", [(f"({CORRECTED} / sum by (instance, netdev) (rate(rdma_netdev_phy_received_bits_total{{{NSEL}}}[{RATE}])))"
                                        f" or ({CORRECTED} / on (instance, netdev) (rdma_netdev_speed_bytes_per_second{{{NSEL}}} * 8))", "{{netdev}}")], unit="sci")
panel("PHY errors", [(f"rate(rdma_netdev_phy_errors_total{{{NSEL}}}[{RATE}])", "{{netdev}} {{kind}}")], unit="ops")
panel("PHY: FEC-corrected bits per lane", [(f"rate(rdma_netdev_phy_lane_corrected_bits_total{{{NSEL}}}[{RATE}])", "{{netdev}} lane {{lane}}")], unit="bps")
panel("Saturated counters", [(f"rdma_stat_saturated{{{SEL}}}", "{{device}}/{{port}} {{counter}}")], kind="table", w=12)
panel("Firmware and boards", [("rdma_device_info{instance=~\"$instance\",device=~\"$device\"}", "{{device}} {{fw_ver}} {{board_id}}")], kind="table", w=12)
panel("Agent: collectors", [("rdma_monitor_collector_success{instance=~\"$instance\"}", "{{collector}}"),
                            ("rdma_monitor_collector_duration_seconds{instance=~\"$instance\"}", "{{collector}} s")], w=12)
panel("Agent: cycle cost", [("rdma_monitor_cycle_duration_seconds{instance=~\"$instance\"}", "cycle s"),
                            ("rdma_monitor_cycle_syscalls{instance=~\"$instance\"}", "{{source}} syscalls")], w=12)

# Lay panels out in rows of 24 columns.
x = y = row_h = 0
for p in panels:
    g = p["gridPos"]
    if x + g["w"] > 24:
        x, y, row_h = 0, y + row_h, 0
    g["x"], g["y"] = x, y
    x += g["w"]
    row_h = max(row_h, g["h"])

dash = {
    "title": "RDMA fabric — node and port overview (rdma-monitor)",
    "uid": "rdma-monitor-overview",
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "tags": ["rdma", "infiniband", "roce"],
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "instance", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": "label_values(rdma_monitor_build_info, instance)", "refresh": 2, "includeAll": True, "multi": True},
        {"name": "device", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": "label_values(rdma_port_up{instance=~\"$instance\"}, device)", "refresh": 2, "includeAll": True, "multi": True},
    ]},
    "panels": panels,
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "rdma-monitor.json"), "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
