use super::*;

fn name(s: &str) -> Name {
    truncated(s)
}

fn status(n: &str) -> UnitStatus {
    UnitStatus {
        name: name(n),
        state: State::Running,
        pid: 42,
        restarts: 3,
        memory_current: Some(1_234_567),
        memory_max: Some(Limit::Value(8 << 20)),
        uptime_ms: 65_000,
    }
}

fn roundtrip_req(req: Request<'_>) {
    let mut buf = [0u8; 256];
    let n = encode_request(&req, &mut buf).unwrap();
    let mut dec = FrameDecoder::<256>::new();
    assert_eq!(dec.feed(&buf[..n]), n);
    let payload = dec.frame().unwrap().unwrap();
    assert_eq!(decode_request(payload).unwrap(), req);
}

/// Every kind of request, with edge values (also for `wire`'s tests).
pub(super) fn every_request() -> Vec<Request<'static>> {
    vec![
        Request::Status {
            name: None,
            from: 0,
        },
        Request::Status {
            name: Some("web"),
            from: 0,
        },
        Request::Status {
            name: None,
            from: u16::MAX,
        },
        Request::Status {
            name: Some("web"),
            from: 300,
        },
        Request::Start { name: "a" },
        Request::Stop { name: "b.c" },
        Request::Restart { name: "d_e" },
        Request::Shutdown(ShutdownKind::Poweroff),
        Request::Shutdown(ShutdownKind::Reboot),
        Request::Shutdown(ShutdownKind::Halt),
        Request::Log {
            name: "x",
            follow: true,
        },
        Request::Log {
            name: "x",
            follow: false,
        },
        Request::Cat { name: "y" },
        Request::Reload,
        Request::Verdict,
        Request::Reexec { path: "" },
        Request::Reexec {
            path: "/sbin/init.new",
        },
        Request::Reexec { path: "/sbin/ü" },
        Request::Info,
    ]
}

#[test]
fn every_request_roundtrips() {
    for req in every_request() {
        roundtrip_req(req);
    }
}

#[test]
fn full_status_page_fits_a_frame() {
    let mut v = heapless::Vec::<UnitStatus, STATUS_PAGE>::new();
    for i in 0..STATUS_PAGE {
        let mut s = status("");
        s.name = name(&format!("{i:0>32}"));
        s.pid = u32::MAX;
        s.restarts = u32::MAX;
        s.memory_current = Some(u64::MAX);
        s.uptime_ms = u64::MAX;
        v.push(s).unwrap();
    }
    let rep = Reply::Status {
        units: v,
        next: Some(u16::MAX),
    };
    let mut buf = vec![0u8; FRAME_BUF];
    let n = encode_reply(&rep, &mut buf).unwrap();
    assert!(n <= FRAME_BUF);
    let got = decode_reply(&buf[HEADER_LEN..n]).unwrap();
    assert_eq!(got, rep);
}

/// Every field of a detail at its longest, and as much output as
/// `status NAME` sends beside it: one frame.
#[test]
fn detail_with_the_longest_tail_fits_a_frame() {
    let mut s = status("");
    s.name = name(&"n".repeat(32));
    s.pid = u32::MAX;
    s.restarts = u32::MAX;
    s.memory_current = Some(u64::MAX);
    s.memory_max = Some(crate::unit::Limit::Value(u64::MAX));
    s.uptime_ms = u64::MAX;
    // One byte a character: every field filled to its last byte, not cut.
    let full = |n: usize| "x".repeat(n);
    let detail = UnitDetail {
        status: s,
        last_exit: LastExit::Code(i32::MIN),
        oom_kills: u32::MAX,
        pressure_avg10: Some(u32::MAX),
        pressure_events: u32::MAX,
        not_enforced: truncated(&full(NOT_ENFORCED_MAX)),
        reason: truncated(&full(REASON_MAX)),
        confinement: truncated(&full(CONFINEMENT_MAX)),
    };
    assert_eq!(detail.confinement.len(), CONFINEMENT_MAX);
    assert_eq!(detail.reason.len(), REASON_MAX);
    assert_eq!(detail.not_enforced.len(), NOT_ENFORCED_MAX);
    let log = vec![b'x'; DETAIL_TAIL_MAX];
    let rep = Reply::Detail { detail, log: &log };
    let mut buf = vec![0u8; FRAME_BUF];
    let n = encode_reply(&rep, &mut buf).unwrap();
    assert_eq!(decode_reply(&buf[HEADER_LEN..n]).unwrap(), rep);
}

#[test]
fn replies_roundtrip_with_borrowed_data() {
    let log = b"line one\nline two\n";
    let reps = [
        Reply::Ok,
        Reply::Error(CtlError::new(ErrCode::NoSuchUnit, "no unit named web")),
        Reply::Detail {
            detail: UnitDetail {
                status: status("web"),
                last_exit: LastExit::Signal(9),
                oom_kills: 2,
                pressure_avg10: Some(125),
                pressure_events: 1,
                not_enforced: crate::proto::truncated("memory.max"),
                reason: truncated("start limit hit"),
                confinement: truncated("namespaces none, user www, capabilities net_bind_service"),
            },
            log,
        },
        Reply::Log {
            missed: 7,
            data: &log[..],
        },
        Reply::Cat("exec = /bin/true\n"),
        Reply::Reload {
            result: Err(CtlError::code(ErrCode::Invalid)),
            report: "a.unit:3: unknown key",
        },
        Reply::Info(InitInfo {
            path: crate::proto::truncated("/sbin/init"),
            version: crate::proto::truncated("0.1.0"),
            state_format: 1,
            reexecs: 3,
            origin: Origin::Adopted {
                units: 20,
                format: 2,
            },
        }),
    ];
    for rep in reps {
        let mut buf = [0u8; 1024];
        let n = encode_reply(&rep, &mut buf).unwrap();
        assert_eq!(decode_reply(&buf[HEADER_LEN..n]).unwrap(), rep);
    }
}

#[test]
fn largest_text_reply_fits_with_overhead() {
    let text = "x".repeat(TEXT_MAX);
    let bytes = vec![0xffu8; TEXT_MAX];
    let mut buf = vec![0u8; FRAME_BUF];
    assert!(encode_reply(&Reply::Cat(&text), &mut buf).is_ok());
    let rep = Reply::Log {
        missed: u64::MAX,
        data: &bytes,
    };
    assert!(encode_reply(&rep, &mut buf).is_ok());
    let rep = Reply::Reload {
        result: Err(CtlError::new(ErrCode::Invalid, &"m".repeat(MESSAGE_MAX))),
        report: &text[..TEXT_MAX - MESSAGE_MAX],
    };
    assert!(encode_reply(&rep, &mut buf).is_ok());
}

#[test]
fn encoding_into_a_small_buffer_is_an_error() {
    let mut buf = [0u8; 8];
    assert_eq!(
        encode_reply(&Reply::Cat("far too long for eight bytes"), &mut buf),
        Err(ProtoError::NoRoom)
    );
    assert_eq!(
        encode_reply(&Reply::Ok, &mut buf[..3]),
        Err(ProtoError::NoRoom)
    );
}

#[test]
fn byte_by_byte_feeding_yields_frames_in_order() {
    let mut stream = Vec::new();
    let reqs = [
        Request::Start { name: "alpha" },
        Request::Reload,
        Request::Log {
            name: "beta",
            follow: false,
        },
    ];
    for r in &reqs {
        let mut buf = [0u8; 64];
        let n = encode_request(r, &mut buf).unwrap();
        stream.extend_from_slice(&buf[..n]);
    }
    let mut dec = FrameDecoder::<64>::new();
    let mut got = 0;
    for b in &stream {
        assert_eq!(dec.feed(core::slice::from_ref(b)), 1);
        if let Some(p) = dec.frame().unwrap() {
            assert_eq!(decode_request(p).unwrap(), reqs[got]);
            got += 1;
            dec.consume();
        }
    }
    assert_eq!(got, reqs.len());
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn two_frames_in_one_read_are_both_seen() {
    let mut buf = [0u8; 64];
    let a = encode_request(&Request::Reload, &mut buf).unwrap();
    let b = encode_request(&Request::Cat { name: "z" }, &mut buf[a..]).unwrap();
    let mut dec = FrameDecoder::<64>::new();
    dec.feed(&buf[..a + b]);
    assert_eq!(
        decode_request(dec.frame().unwrap().unwrap()).unwrap(),
        Request::Reload
    );
    dec.consume();
    assert_eq!(
        decode_request(dec.frame().unwrap().unwrap()).unwrap(),
        Request::Cat { name: "z" }
    );
    dec.consume();
    assert_eq!(dec.frame().unwrap(), None);
}

#[test]
fn huge_prefix_is_rejected_from_four_bytes() {
    let mut dec = FrameDecoder::<FRAME_BUF>::new();
    dec.feed(&[0xff, 0xff, 0xff]);
    assert_eq!(dec.frame(), Ok(None));
    dec.feed(&[0xff]);
    assert_eq!(dec.frame(), Err(ProtoError::TooLarge { len: u32::MAX }));
    // Just over the limit is rejected too; exactly at it is not.
    let over = ((FRAME_MAX + 1) as u32).to_le_bytes();
    assert!(matches!(
        frame_len(&over, FRAME_MAX),
        Err(ProtoError::TooLarge { .. })
    ));
    let at = (FRAME_MAX as u32).to_le_bytes();
    assert_eq!(frame_len(&at, FRAME_MAX), Ok(None));
}

#[test]
fn a_small_decoder_lowers_the_limit() {
    let mut dec = FrameDecoder::<16>::new();
    dec.feed(&13u32.to_le_bytes());
    assert_eq!(dec.frame(), Err(ProtoError::TooLarge { len: 13 }));
    let mut dec = FrameDecoder::<16>::new();
    dec.feed(&12u32.to_le_bytes());
    assert_eq!(dec.frame(), Ok(None));
    assert_eq!(dec.feed(&[0u8; 20]), 12);
    assert!(dec.frame().unwrap().is_some());
}

#[test]
fn truncated_frame_stays_incomplete() {
    let mut buf = [0u8; 64];
    let n = encode_request(&Request::Start { name: "web" }, &mut buf).unwrap();
    let mut dec = FrameDecoder::<64>::new();
    dec.feed(&buf[..n - 1]);
    assert_eq!(dec.frame(), Ok(None));
    // A payload cut short inside the message is malformed, not a panic.
    let short = &buf[HEADER_LEN..n - 1];
    assert_eq!(decode_request(short), Err(ProtoError::Malformed));
}

#[test]
fn garbage_and_trailing_bytes_are_malformed() {
    assert_eq!(decode_request(&[]), Err(ProtoError::Malformed));
    assert_eq!(
        decode_request(&[PROTO_VERSION as u8, 0xee, 0xee, 0xee]),
        Err(ProtoError::Malformed)
    );
    let mut buf = [0u8; 64];
    let n = encode_request(&Request::Reload, &mut buf).unwrap();
    let mut payload = buf[HEADER_LEN..n].to_vec();
    payload.push(0);
    assert_eq!(decode_request(&payload), Err(ProtoError::Malformed));
    // Invalid UTF-8 in a name.
    let bad = [PROTO_VERSION as u8, 1, 2, 0xc3, 0x28];
    assert_eq!(decode_request(&bad), Err(ProtoError::Malformed));
}

#[test]
fn other_version_is_reported_as_such() {
    let mut buf = [0u8; 16];
    let payload = postcard::to_slice(&(PROTO_VERSION + 1, Request::Reload), &mut buf).unwrap();
    assert_eq!(
        decode_request(payload),
        Err(ProtoError::Version {
            got: PROTO_VERSION + 1
        })
    );
}

#[test]
fn error_messages_are_cut_not_refused() {
    let long = "é".repeat(MESSAGE_MAX);
    let e = CtlError::new(ErrCode::Failed, &long);
    assert!(e.message.len() <= MESSAGE_MAX);
    assert!(e.message.len() >= MESSAGE_MAX - 1);
    // Cut, and says so: what is kept is the text's start, whole
    // characters only.
    let kept = e
        .message
        .strip_suffix(CUT)
        .unwrap_or_else(|| panic!("{}", e.message));
    assert!(long.starts_with(kept));
    let e = CtlError::fmt(
        ErrCode::Failed,
        format_args!("{}", "x".repeat(MESSAGE_MAX + 1)),
    );
    assert_eq!(e.message.len(), MESSAGE_MAX);
    assert!(e.message.ends_with("xx..."), "{}", e.message);
    // What fits exactly is not cut.
    let e = CtlError::new(ErrCode::Failed, &"y".repeat(MESSAGE_MAX));
    assert_eq!(e.message.as_str(), "y".repeat(MESSAGE_MAX));
    // The words a message must end with, whole whatever came before.
    let m: Message = formatted_then(format_args!("{long}"), "; init keeps running");
    assert!(m.ends_with("...; init keeps running"), "{m}");
    assert!(m.len() <= MESSAGE_MAX);
    let m: Message = formatted_then(format_args!("short"), "; done");
    assert_eq!(m.as_str(), "short; done");
    let e = CtlError::fmt(ErrCode::Failed, format_args!("unit {} failed", "web"));
    assert_eq!(e.to_string(), "unit web failed");
    assert_eq!(
        CtlError::code(ErrCode::NoSuchUnit).to_string(),
        "no such unit"
    );
}

#[test]
fn the_largest_requests_fit_request_max() {
    let name = "n".repeat(crate::vocab::NAME_MAX);
    let path = "/".repeat(crate::vocab::PATH_BYTES);
    let mut buf = [0u8; HEADER_LEN + REQUEST_MAX];
    for req in [
        Request::Reexec { path: &path },
        Request::Log {
            name: &name,
            follow: true,
        },
        Request::Status {
            name: Some(&name),
            from: u16::MAX,
        },
    ] {
        let n = encode_request(&req, &mut buf).unwrap();
        let mut dec = FrameDecoder::<{ HEADER_LEN + REQUEST_MAX }>::new();
        dec.feed(buf.get(..n).unwrap());
        assert_eq!(decode_request(dec.frame().unwrap().unwrap()).unwrap(), req);
    }
}

/// A text longer than its field, from a peer whose field is longer (a
/// newer PID 1's error or reason), is read cut and marked, not refused
/// as malformed: a field may grow without a new protocol version.
#[test]
fn a_text_longer_than_its_field_is_read_cut() {
    let rep = Reply::Error(CtlError::new(ErrCode::Failed, &"m".repeat(10)));
    let mut buf = vec![0u8; FRAME_BUF];
    let n = encode_reply(&rep, &mut buf).unwrap();
    let mut payload = buf[HEADER_LEN..n].to_vec();
    // The message ends the payload: its length (one byte), then itself.
    let cut = payload.len() - 11;
    assert_eq!(&payload[cut..], b"\x0ammmmmmmmmm");
    payload.truncate(cut);
    payload.extend_from_slice(&[0x82, 0x01]); // 130 as a varint
    payload.extend_from_slice(&[b'm'; 130]);
    let Ok(Reply::Error(e)) = decode_reply(&payload) else {
        panic!("{:?}", decode_reply(&payload));
    };
    assert_eq!(e.message.len(), MESSAGE_MAX);
    assert_eq!(
        e.message.as_str(),
        format!("{}{CUT}", "m".repeat(MESSAGE_MAX - CUT.len()))
    );
}
