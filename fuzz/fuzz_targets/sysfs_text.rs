//! Any text as the content of a sysfs attribute: every parser returns a value
//! or an error, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdma_monitor::sources::sysfs::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse::classify(&text);
    let _ = parse::parse_u64(&text);
    let _ = parse::parse_hex_or_dec(&text);
    let _ = parse::parse_enum(&text);
    let _ = parse::parse_rate(&text);
    let _ = parse::parse_guid(&text);
    let _ = parse::parse_gid(&text);
});
