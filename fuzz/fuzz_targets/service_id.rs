//! Service-id parsing: never panics; whatever parses prints canonically and
//! parses back to itself, strictly and leniently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_identity::{RicochetId, ServiceId};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<ServiceId>() {
        let canonical = id.to_string();
        assert_eq!(canonical.len(), id.generation().service_id_len());
        assert_eq!(ServiceId::from_canonical(&canonical), Ok(id));
        assert_eq!(canonical.parse::<ServiceId>(), Ok(id));
        let ricochet = RicochetId(id).to_string();
        assert_eq!(ricochet.parse::<RicochetId>(), Ok(RicochetId(id)));
    }
    if let Ok(id) = ServiceId::from_canonical(text) {
        assert_eq!(id.to_string(), text, "a canonical id prints as itself");
    }
});
