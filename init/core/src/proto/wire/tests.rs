//! The hand-written codec against postcard itself: the same bytes out, the
//! same messages (or the same refusals) back, for every variant and for
//! every one-byte corruption and truncation of them.

use super::super::*;
use crate::codec::corruptions;
use crate::unit::Limit;
use crate::vocab::State;

/// What the serde derives and postcard make of `msg`: the payload.
fn postcard_payload<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = vec![0u8; FRAME_BUF];
    postcard::to_slice(&(PROTO_VERSION, msg), &mut buf)
        .unwrap()
        .to_vec()
}

/// The old decoder: postcard through the serde derives.
fn postcard_decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, ProtoError> {
    let (version, rest) =
        postcard::take_from_bytes::<u16>(payload).map_err(|_| ProtoError::Malformed)?;
    if version != PROTO_VERSION {
        return Err(ProtoError::Version { got: version });
    }
    match postcard::take_from_bytes::<T>(rest) {
        Ok((msg, [])) => Ok(msg),
        _ => Err(ProtoError::Malformed),
    }
}

fn requests() -> Vec<Request<'static>> {
    super::super::tests::every_request()
}

fn status(n: &str, state: State, big: bool) -> UnitStatus {
    UnitStatus {
        name: truncated(n),
        state,
        pid: if big { u32::MAX } else { 7 },
        restarts: if big { 128 } else { 0 },
        memory_current: big.then_some(u64::MAX),
        memory_max: if big {
            Some(Limit::Max)
        } else {
            Some(Limit::Value(16 << 20))
        },
        uptime_ms: if big { u64::MAX } else { 127 },
    }
}

fn replies() -> Vec<Reply<'static>> {
    let mut units = heapless::Vec::new();
    for (i, s) in State::ALL.into_iter().enumerate() {
        units.push(status("u", s, i % 2 == 0)).unwrap();
    }
    let mut none = status("n", State::Stopped, false);
    none.memory_max = None;
    units.push(none).unwrap();
    let mut reps: Vec<Reply<'static>> = ErrCode::ALL
        .into_iter()
        .map(|c| Reply::Error(CtlError::new(c, "why")))
        .collect();
    let detail = |last_exit, pressure_avg10| UnitDetail {
        status: status("web", State::Running, true),
        last_exit,
        oom_kills: 2,
        pressure_avg10,
        pressure_events: 70_000,
        not_enforced: truncated("memory.max"),
        reason: truncated("start limit hit"),
        confinement: truncated("namespaces none"),
    };
    reps.extend([
        Reply::Ok,
        Reply::Error(CtlError::code(ErrCode::Busy)),
        Reply::Status { units, next: None },
        Reply::Status {
            units: heapless::Vec::new(),
            next: Some(64),
        },
        Reply::Detail {
            detail: detail(LastExit::None, None),
            log: b"",
        },
        Reply::Detail {
            detail: detail(LastExit::Code(-1), Some(u32::MAX)),
            log: b"a\nb\n",
        },
        Reply::Detail {
            detail: detail(LastExit::Signal(i32::MIN), Some(0)),
            log: b"\xff",
        },
        Reply::Detail {
            detail: detail(LastExit::Code(i32::MAX), None),
            log: b"",
        },
        Reply::Detail {
            detail: detail(LastExit::OomKill, None),
            log: b"",
        },
        Reply::Log {
            missed: 0,
            data: b"out",
        },
        Reply::Log {
            missed: u64::MAX,
            data: &[0u8; 200],
        },
        Reply::Cat("exec = /bin/true\n"),
        Reply::Reload {
            result: Ok(()),
            report: "",
        },
        Reply::Reload {
            result: Err(CtlError::new(ErrCode::Invalid, "a.unit:3")),
            report: "a.unit:3: unknown key",
        },
    ]);
    for origin in [
        Origin::Boot,
        Origin::HandedOver { units: 3 },
        Origin::Adopted {
            units: 1000,
            format: u32::MAX,
        },
    ] {
        reps.push(Reply::Info(InitInfo {
            path: truncated("/sbin/init"),
            version: truncated("0.1.0"),
            state_format: 2,
            reexecs: 200,
            origin,
        }));
    }
    reps
}

#[test]
fn requests_are_postcards_bytes() {
    for req in requests() {
        let mut buf = [0u8; REQUEST_MAX];
        let n = encode_request(&req, &mut buf).unwrap();
        let want = postcard_payload(&req);
        assert_eq!(&buf[HEADER_LEN..n], &want[..], "{req:?}");
        assert_eq!(buf[..HEADER_LEN], (want.len() as u32).to_le_bytes());
        assert_eq!(decode_request(&want), Ok(req));
    }
}

#[test]
fn replies_are_postcards_bytes() {
    for rep in replies() {
        let mut buf = vec![0u8; FRAME_BUF];
        let n = encode_reply(&rep, &mut buf).unwrap();
        let want = postcard_payload(&rep);
        assert_eq!(&buf[HEADER_LEN..n], &want[..], "{rep:?}");
        assert_eq!(buf[..HEADER_LEN], (want.len() as u32).to_le_bytes());
        assert_eq!(decode_reply(&want), Ok(rep));
    }
}

#[test]
fn corrupt_requests_are_read_as_postcard_reads_them() {
    for req in requests() {
        for p in corruptions(&postcard_payload(&req)) {
            assert_eq!(decode_request(&p), postcard_decode(&p), "{p:?}");
        }
    }
}

#[test]
fn corrupt_replies_are_read_as_postcard_reads_them() {
    for rep in replies() {
        for p in corruptions(&postcard_payload(&rep)) {
            assert_eq!(decode_reply(&p), postcard_decode(&p), "{p:?}");
        }
    }
}

#[test]
fn too_small_a_buffer_is_no_room_at_every_size() {
    for rep in replies() {
        let mut buf = vec![0u8; FRAME_BUF];
        let n = encode_reply(&rep, &mut buf).unwrap();
        for short in 0..n {
            let mut small = vec![0u8; short];
            assert_eq!(encode_reply(&rep, &mut small), Err(ProtoError::NoRoom));
        }
    }
}
