//! The editor help: every shipped class, and each of its members, has a description.

/// The classes a user gets.
const SHIPPED: [&str; 11] = [
    "LocalPacketPeer",
    "LinkConditioner",
    "ReliablePacketPeer",
    "ReliableServer",
    "UdpPacketPeer",
    "UdpLinkProxy",
    "LocalMultiplayerNetwork",
    "LocalMultiplayerPeer",
    "MultiplayerLinkConditioner",
    "PeerkitLinks",
    "UdpMultiplayerPeer",
];

/// Every class, method, property, signal and constant has a description in the editor's help; with
/// PEERKIT_DOCS_DIR set, the docs are also written there for the GDScript test that checks them against
/// what the engine registered (tests/test_docs.gd).
#[test]
fn every_documented_item_has_a_description() {
    let docs: Vec<String> = godot::docs::__gather_xml_docs().collect();
    let names: Vec<&str> = docs
        .iter()
        .filter_map(|xml| xml.split("<class name=\"").nth(1)?.split('"').next())
        .collect();
    for class in SHIPPED {
        assert!(names.contains(&class), "{class} has docs: {names:?}");
    }
    for xml in &docs {
        let class = xml
            .split("<class name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("?");
        for tag in ["brief_description", "description"] {
            let open = format!("<{tag}>");
            let text = xml
                .split(&open)
                .nth(1)
                .and_then(|rest| rest.split(&format!("</{tag}>")).next());
            assert!(
                text.is_some_and(|t| !t.trim().is_empty()),
                "{class}: empty <{tag}>"
            );
        }
        let empty = xml.matches("<description>").count()
            - xml.matches("<description></description>").count();
        assert_eq!(
            empty,
            xml.matches("<description>").count(),
            "{class} has an empty description"
        );
        for (i, chunk) in xml.split("<description>").enumerate().skip(1) {
            let text = chunk.split("</description>").next().unwrap_or("");
            assert!(
                !text.trim().is_empty(),
                "{class}: description #{i} is empty"
            );
        }
        if let Ok(dir) = std::env::var("PEERKIT_DOCS_DIR") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(format!("{dir}/{class}.xml"), xml).unwrap();
        }
    }
}
