//! Intel/Cornelis Omni-Path hfi1 `hw_counters/` (drivers/infiniband/hw/hfi1/chip.c,
//! torvalds/linux: the names of `port_cntrs[]`, `CNTR_ELEM(#name, ...)`).
//! The transport ones are rdmavt's per-port software counters
//! (`struct rvt_ibport` n_rc_resends, n_rc_timeouts, ...), kept by the
//! driver's RC code (hfi1 rc.c). hfi1 ports have PMA `counters/` (the
//! driver answers PortCounters itself), so its TxWords/RxWords don't stand
//! in for the volume families.
//!
//! `TxWait` is SendWaitCnt (chip.c: `TXE64_PORT_CNTR_ELEM(TxWait,
//! SEND_WAIT_CNT)`), not PortXmitWait. It stays in the generic family, raw,
//! and is never exported as seconds: no source gives its clock for that use.
//! torvalds/linux 0719007663ce ("IB/hfi1: Convert PortXmitWait/PortVLXmitWait
//! counters to flit times") converts it for the PMA as cycles × 2 × (4 /
//! link width) × (25G / link speed) and names no clock; the 805 MHz of chip.h
//! (`ASIC_CCLOCK_PS 1242`) would make "cycles / 805 MHz" agree with that
//! conversion only at 4X 25G. Cornelis CN5000 (`chip_jkr.h`, 1660 MHz) uses
//! the same counter name, so one clock per name would be wrong there too.

use super::{Known, known};

pub const KNOWN: &[Known] = &[
    // Requester: packets sent again after a NAK or timeout (restart_rc).
    known!(Hw, "RcResend", transport RETRANSMISSIONS, ["kind" = "packet"], ["retransmission_rate"]),
    known!(Hw, "RnrNak", transport RETRANSMISSIONS, ["kind" = "rnr_nak"], []),
    // The RC retry (ACK) timer expired.
    known!(Hw, "RcTimeOut", transport TIMEOUTS, ["kind" = "ack"], []),
    // PSN sequence error NAKs received by the requester.
    known!(Hw, "SeqNak", transport SEQUENCE_ERRORS, ["kind" = "nak_received"], []),
    // The responder NAKed an out-of-sequence request.
    known!(Hw, "RcSeqNak", transport SEQUENCE_ERRORS, ["kind" = "out_of_sequence"], []),
    known!(Hw, "RcDupRew", transport SEQUENCE_ERRORS, ["kind" = "duplicate_request"], []),
    // RDMA READ responses out of sequence at the requester.
    known!(Hw, "RdmaSeq", transport SEQUENCE_ERRORS, ["kind" = "read_response"], []),
    // Invalid request, remote access and remote operation NAKs received.
    known!(Hw, "OtherNak", transport ERRORS, ["side" = "requester", "kind" = "remote_nak"], []),
];
