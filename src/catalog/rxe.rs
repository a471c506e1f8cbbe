//! Soft-RoCE (rxe) `hw_counters/` (drivers/infiniband/sw/rxe/rxe_hw_counters.c,
//! torvalds/linux: `rxe_counter_descs`). `duplicate_request` has mlx5's name
//! and meaning and is listed in [`super::mlx5`]. `sent_pkts`/`rcvd_pkts` stay
//! in the generic family (tests/vm reads them there).

use super::{Known, known};

pub const KNOWN: &[Known] = &[
    // The completer retries a request after an ACK timeout or a NAK.
    known!(Hw, "completer_retry_err", transport RETRANSMISSIONS, ["kind" = "completer_retry"], ["retransmission_rate"]),
    known!(Hw, "rcvd_rnr_err", transport RETRANSMISSIONS, ["kind" = "rnr_nak"], []),
    known!(Hw, "out_of_seq_request", transport SEQUENCE_ERRORS, ["kind" = "out_of_sequence"], []),
    known!(Hw, "rcvd_seq_err", transport SEQUENCE_ERRORS, ["kind" = "nak_received"], []),
    known!(Hw, "retry_exceeded_err", transport ERRORS, ["side" = "requester", "kind" = "retry_exceeded"], []),
    known!(Hw, "retry_rnr_exceeded_err", transport ERRORS, ["side" = "requester", "kind" = "rnr_retry_exceeded"], []),
];
