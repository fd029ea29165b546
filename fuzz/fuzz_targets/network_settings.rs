//! The censorship settings' parsers (ricochet-transport `censorship`): bridge
//! lists, proxy URLs and port lists never panic; what parses prints back to
//! text that parses to the same value, and the torrc lines of accepted
//! settings never split a value over two lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_transport::censorship::{
    BridgeLine, ReachablePorts, TorNetworkSettings, TransportPlugin, UpstreamProxy,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bridges) = BridgeLine::parse_list(text) {
        for bridge in &bridges {
            let again = BridgeLine::parse(&bridge.to_string()).expect("a printed bridge line parses");
            assert_eq!(&again, bridge);
        }
        let names: Vec<String> = bridges
            .iter()
            .filter_map(|b| b.transport().map(str::to_owned))
            .collect();
        let mut settings = TorNetworkSettings::default().with_bridges(bridges);
        if !names.is_empty() {
            settings = settings.with_transport(TransportPlugin::new(names, "/usr/bin/obfs4proxy"));
        }
        let lines = settings.torrc_lines().expect("bridges with their plugin are accepted");
        assert!(lines.iter().all(|line| !line.contains('\n')));
    }
    if let Ok(proxy) = text.parse::<UpstreamProxy>() {
        let again: UpstreamProxy = proxy
            .to_url_with_password()
            .parse()
            .expect("a printed proxy URL parses");
        assert_eq!(again, proxy);
        let lines = TorNetworkSettings::default()
            .with_proxy(proxy)
            .torrc_lines()
            .expect("a proxy alone is accepted");
        assert!(lines.iter().all(|line| !line.contains('\n')));
    }
    if let Ok(ports) = text.parse::<ReachablePorts>() {
        assert_eq!(ports.to_string().parse::<ReachablePorts>().ok(), Some(ports));
    }
});
