//! The pickle reader on pickles Python wrote (the expression that made each is beside it),
//! and on broken ones: every failure is a typed error at a byte offset, never a panic.

use cellwright_data::pickle::{MAX_MARKS, Pickle, PickleError, Value};
use proptest::prelude::*;

/// `l = [1, 2]; l.append(l); pickle.dumps({"a": l, "b": l}, protocol=4)`: the list is
/// fetched from the memo before its items are appended, and contains itself.
const ALIASED: &[u8] = b"\
    \x80\x04\x95\x19\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01a\x94]\x94(K\x01K\x02h\x02e\
    \x8c\x01b\x94h\x02u.";

/// `pickle.dumps((None, True, False, -1, 255, 65535, 2**40, -2**63, 1.5, "héllo",
/// b"\x00\x01", (), (1,), frozenset({1}), {2}), protocol=4)`
const SCALARS_4: &[u8] = b"\
    \x80\x04\x95J\x00\x00\x00\x00\x00\x00\x00(N\x88\x89J\xff\xff\xff\xffK\xffM\xff\xff\x8a\
    \x06\x00\x00\x00\x00\x00\x01\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80G?\xf8\x00\x00\x00\
    \x00\x00\x00\x8c\x06h\xc3\xa9llo\x94C\x02\x00\x01\x94)K\x01\x85\x94(K\x01\x91\x94\x8f\
    \x94(K\x02\x90t\x94.";

/// `pickle.dumps([None, -2**40, "x", (1, 2, 3), {"k": 1.25}], protocol=2)`
const SCALARS_2: &[u8] = b"\
    \x80\x02]q\x00(N\x8a\x06\x00\x00\x00\x00\x00\xffX\x01\x00\x00\x00xq\x01K\x01K\x02K\x03\
    \x87q\x02}q\x03X\x01\x00\x00\x00kq\x04G?\xf4\x00\x00\x00\x00\x00\x00se.";

/// An instance of `geo.Point` with `x = 1, y = 2`, protocol 2 (GLOBAL, BINPUT) and protocol 5
/// (STACK_GLOBAL, MEMOIZE).
const OBJECT_2: &[u8] = b"\
    \x80\x02cgeo\x0aPoint\x0aq\x00)\x81q\x01}q\x02(X\x01\x00\x00\x00xq\x03K\x01X\x01\x00\x00\
    \x00yq\x04K\x02ub.";
const OBJECT_5: &[u8] = b"\
    \x80\x05\x95%\x00\x00\x00\x00\x00\x00\x00\x8c\x03geo\x94\x8c\x05Point\x94\x93\x94)\x81\
    \x94}\x94(\x8c\x01x\x94K\x01\x8c\x01y\x94K\x02ub.";

const ALL: [&[u8]; 5] = [ALIASED, SCALARS_4, SCALARS_2, OBJECT_2, OBJECT_5];

/// The values of a container's items, or of a dict's values.
fn values(p: &Pickle, items: &[cellwright_data::pickle::NodeId]) -> Vec<Value> {
    items.iter().map(|&i| p.get(i).clone()).collect()
}

#[test]
fn a_list_from_the_memo_is_the_list_appended_to_later() {
    let p = Pickle::parse(ALIASED).unwrap();
    let a = p.dict_get(p.root(), "a").unwrap();
    let b = p.dict_get(p.root(), "b").unwrap();
    assert_eq!(a, b, "one node, reached twice");
    let items = p.items(a).unwrap();
    assert_eq!(values(&p, &items[..2]), [Value::Int(1), Value::Int(2)]);
    assert_eq!(items[2], a, "the list holds itself");
}

#[test]
fn scalars_and_containers_read_as_python_wrote_them() {
    let p = Pickle::parse(SCALARS_4).unwrap();
    let items = p.items(p.root()).unwrap();
    assert_eq!(
        values(&p, &items[..11]),
        [
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-1),
            Value::Int(255),
            Value::Int(65535),
            Value::Int(1 << 40),
            Value::Int(i64::MIN),
            Value::Float(1.5),
            Value::Str("héllo".into()),
            Value::Bytes(vec![0, 1]),
        ]
    );
    assert_eq!(p.get(items[11]), &Value::Tuple(vec![]));
    assert_eq!(values(&p, p.items(items[12]).unwrap()), [Value::Int(1)]);
    assert!(matches!(p.get(items[13]), Value::FrozenSet(v) if v.len() == 1));
    assert!(matches!(p.get(items[14]), Value::Set(v) if v.len() == 1));

    let p = Pickle::parse(SCALARS_2).unwrap();
    let items = p.items(p.root()).unwrap();
    assert!(matches!(p.get(p.root()), Value::List(_)));
    assert_eq!(p.as_int(items[1]), Some(-(1 << 40)));
    assert_eq!(p.as_str(items[2]), Some("x"));
    assert_eq!(p.items(items[3]).unwrap().len(), 3);
    assert_eq!(
        p.get(p.dict_get(items[4], "k").unwrap()),
        &Value::Float(1.25)
    );
}

#[test]
fn objects_are_symbolic_calls_with_their_state() {
    for bytes in [OBJECT_2, OBJECT_5] {
        let p = Pickle::parse(bytes).unwrap();
        let Value::Call {
            callable,
            args,
            kwargs: None,
            state: Some(state),
        } = p.get(p.root())
        else {
            panic!("{:?}", p.get(p.root()));
        };
        assert_eq!(p.global(*callable), Some(("geo", "Point")));
        assert_eq!(p.items(*args), Some(&[][..]));
        assert_eq!(p.as_int(p.dict_get(*state, "x").unwrap()), Some(1));
        assert_eq!(p.as_int(p.dict_get(*state, "y").unwrap()), Some(2));
    }
}

#[test]
fn every_truncation_is_an_error() {
    // As Python wrote them (the literals' line continuations dropped nothing).
    assert_eq!(ALL.map(<[u8]>::len), [36, 85, 55, 46, 48]);
    for bytes in ALL {
        for end in 0..bytes.len() {
            let err = Pickle::parse(&bytes[..end]).unwrap_err();
            match err {
                PickleError::Truncated { offset, .. }
                | PickleError::StackUnderflow { offset, .. } => {
                    assert!(offset <= end, "{end}: {err}")
                }
                other => panic!("prefix of {end} bytes: {other}"),
            }
        }
        assert!(Pickle::parse(bytes).is_ok());
    }
}

#[test]
fn broken_pickles_are_typed_errors_at_their_offset() {
    let table: &[(&[u8], PickleError)] = &[
        (
            b"\x80\x04\xff",
            PickleError::UnknownOpcode {
                offset: 2,
                opcode: 0xff,
            },
        ),
        (
            b"h\x05.",
            PickleError::BadMemo {
                offset: 0,
                index: 5,
            },
        ),
        (
            b"j\xff\xff\xff\xff.",
            PickleError::BadMemo {
                offset: 0,
                index: u32::MAX.into(),
            },
        ),
        (
            b".",
            PickleError::StackUnderflow {
                offset: 0,
                op: "STOP",
            },
        ),
        // A TUPLE2 may not reach below an open MARK.
        (
            b"K\x01(K\x02\x86.",
            PickleError::StackUnderflow {
                offset: 5,
                op: "TUPLE1/2/3",
            },
        ),
        (
            b"a",
            PickleError::StackUnderflow {
                offset: 0,
                op: "APPEND",
            },
        ),
        // Lengths past the end are refused before anything is allocated.
        (
            b"X\xff\xff\xff\xffabc",
            PickleError::Truncated {
                offset: 0,
                what: "a string",
            },
        ),
        (
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            PickleError::Truncated {
                offset: 0,
                what: "a string",
            },
        ),
        (
            b"\x8e\x00\x00\x00\x00\x00\x00\x00\x80",
            PickleError::Truncated {
                offset: 0,
                what: "bytes",
            },
        ),
        (
            b"\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00N.",
            PickleError::Truncated {
                offset: 2,
                what: "a frame",
            },
        ),
        (
            b"\x8b\xff\xff\xff\x7f",
            PickleError::Truncated {
                offset: 0,
                what: "an integer",
            },
        ),
        (
            b"\x80\x06N.",
            PickleError::Malformed {
                offset: 0,
                message: "protocol 6 is newer than 5".into(),
            },
        ),
        // pickle.dumps(2**70, protocol=2)
        (
            b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00@.",
            PickleError::Malformed {
                offset: 2,
                message: "a 9-byte integer".into(),
            },
        ),
        (
            b"K\x01K\x02b.",
            PickleError::Malformed {
                offset: 4,
                message: "BUILD on an int".into(),
            },
        ),
        (
            b"}K\x01a.",
            PickleError::Malformed {
                offset: 3,
                message: "APPEND on a dict".into(),
            },
        ),
        (
            b"K\x01K\x02\x93.",
            PickleError::Malformed {
                offset: 4,
                message: "STACK_GLOBAL of a non-string".into(),
            },
        ),
        (
            b"\x8c\x02\xff\xfe.",
            PickleError::Malformed {
                offset: 0,
                message: "a string is not UTF-8".into(),
            },
        ),
    ];
    for (bytes, expected) in table {
        assert_eq!(&Pickle::parse(bytes).unwrap_err(), expected, "{bytes:?}");
    }
    let deep = vec![b'('; MAX_MARKS + 1];
    assert_eq!(
        Pickle::parse(&deep).unwrap_err(),
        PickleError::TooDeep { offset: MAX_MARKS }
    );
    // The message says where.
    assert_eq!(
        Pickle::parse(b"h\x05.").unwrap_err().to_string(),
        "byte 0: no memo entry 5"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Pickle::parse(&bytes);
    }

    #[test]
    fn a_changed_byte_never_panics(
        which in 0..ALL.len(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = ALL[which].to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = Pickle::parse(&bytes);
    }
}
