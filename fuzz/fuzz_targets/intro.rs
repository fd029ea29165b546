//! The introduction (§3.1): parsing never panics; what parses re-encodes to
//! exactly the bytes it took, and every shorter prefix asks for more bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_proto::Introduction;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((intro, used))) = Introduction::parse(data) else {
        return;
    };
    assert!(used <= data.len());
    assert_eq!(used, 3 + intro.versions().len());
    assert_eq!(intro.encode(), &data[..used]);
    for len in 0..used {
        assert_eq!(
            Introduction::parse(&data[..len]),
            Ok(None),
            "prefix of {len} bytes"
        );
    }
});
