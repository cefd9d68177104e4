//! The `mosaic_core::fuzzing` functions over every relevant input of the
//! interoperability vectors, seeded mutations of the valid ones, and seeded
//! random bytes, so that stable CI runs what the fuzzers run.

use mosaic_core::fuzzing::{fuzz_bootstrap, fuzz_filter, fuzz_printable, fuzz_record};
use mosaic_core::{Filter, Record, ServerBootstrap, Url, UserBootstrap};

use crate::support::{Rng, array, hex_at, load, str_at};

/// Mutations tried per valid input.
const MUTATIONS: usize = 120;
/// Random inputs tried per fuzz function.
const RANDOM_INPUTS: usize = 3000;

/// Runs `fuzz` on each input and on `MUTATIONS` mutations of each.
fn with_mutations(seed: u64, inputs: &[Vec<u8>], fuzz: fn(&[u8])) {
    let mut rng = Rng::new(seed);
    for input in inputs {
        fuzz(input);
        for mutated in rng.mutations(input, MUTATIONS) {
            fuzz(&mutated);
        }
    }
}

#[test]
fn record_fuzzer_over_vectors_and_mutations() {
    let records = load("records.json");
    let invalid = load("invalid_records.json");
    let mut inputs: Vec<Vec<u8>> = array(&records, "records")
        .iter()
        .filter_map(|case| hex_at(case, "/expected/record_hex"))
        .collect();
    let valid_records = inputs.len();
    for case in array(&records, "records") {
        inputs.extend(hex_at(case, "/inputs/tag_set_hex"));
    }
    for case in array(&records, "tag_set_parse_cases") {
        inputs.extend(hex_at(case, "/hex"));
    }
    for case in array(&invalid, "cases") {
        inputs.extend(hex_at(case, "/record_hex"));
    }
    assert!(valid_records >= 15, "records.json lists 15 records");
    // The success path must be exercised, not only the refusals.
    let accepted = inputs
        .iter()
        .filter(|i| Record::from_bytes(i).is_ok())
        .count();
    assert!(
        accepted >= valid_records,
        "only {accepted} of the {valid_records} vector records parsed"
    );
    with_mutations(1, &inputs, fuzz_record);
}

#[test]
fn filter_fuzzer_over_vectors_and_mutations() {
    let filters = load("filters.json");
    let mut inputs = Vec::new();
    for case in array(&filters, "filters") {
        inputs.extend(hex_at(case, "/filter_hex"));
        for element in array(case, "elements") {
            // Each element alone, behind a header of the right length.
            if let Some(bytes) = hex_at(element, "/hex") {
                let mut filter = ((8 + bytes.len()) as u16).to_le_bytes().to_vec();
                filter.extend_from_slice(&[0; 6]);
                filter.extend_from_slice(&bytes);
                inputs.push(filter);
            }
        }
    }
    for case in array(&filters, "parse_cases") {
        inputs.extend(hex_at(case, "/filter_hex"));
    }
    let accepted = inputs
        .iter()
        .filter(|i| Filter::from_bytes(i).is_ok())
        .count();
    assert!(accepted >= 18, "only {accepted} vector filters parsed");
    with_mutations(2, &inputs, fuzz_filter);
}

#[test]
fn bootstrap_fuzzer_over_vectors_and_mutations() {
    let bootstraps = load("bootstraps.json");
    let mut texts: Vec<String> = Vec::new();
    for case in array(&bootstraps, "user_bootstraps") {
        texts.extend(str_at(case, "/reference_dht_string").map(str::to_owned));
        texts.extend(str_at(case, "/spec_derived_dht_string").map(str::to_owned));
    }
    texts.extend(str_at(&bootstraps, "/server_bootstrap/reference_dht_string").map(str::to_owned));
    for key in ["user_bootstrap_parse_cases", "server_bootstrap_parse_cases"] {
        for case in array(&bootstraps, key) {
            texts.extend(str_at(case, "/input").map(str::to_owned));
        }
    }
    // The server bootstraps of the vectors use schemes Mosaic does not
    // have, so build some from the URLs that do parse.
    let mut urls = Vec::new();
    for case in array(&bootstraps, "url_parse_cases") {
        if let Some(input) = str_at(case, "/input") {
            texts.push(input.to_owned());
            if Url::parse(input).is_ok() {
                texts.push(format!("S\n{input}"));
                urls.push(input.to_owned());
            }
        }
    }
    texts.push(format!("S\n{}", urls.join("\n")));
    texts.push("S\nmosaic://[2001:db8::1]:5198\nmosaictcp://h.example:1320/".to_owned());
    // 983 bytes of URLs without their final `/`: valid as read, but too
    // long once written in normal form.
    let mut long = String::from("S");
    for i in 0.. {
        let line = format!("\nmosaic://h{i}.example");
        if long.len() + line.len() > 983 {
            break;
        }
        long.push_str(&line);
    }
    texts.push(long);
    let inputs: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
    let users = inputs
        .iter()
        .filter(|i| UserBootstrap::from_bytes(i).is_ok())
        .count();
    let servers = inputs
        .iter()
        .filter(|i| ServerBootstrap::from_bytes(i).is_ok())
        .count();
    assert!(users >= 4, "only {users} user bootstraps parsed");
    assert!(servers >= 3, "only {servers} server bootstraps parsed");
    with_mutations(3, &inputs, fuzz_bootstrap);
}

#[test]
fn printable_fuzzer_over_vectors_and_mutations() {
    let keys = load("keys.json");
    let records = load("records.json");
    let encrypted = load("encrypted_secret_keys.json");
    let mut texts: Vec<String> = Vec::new();
    let mut push = |value: &serde_json::Value, pointer: &str| {
        texts.extend(str_at(value, pointer).map(str::to_owned));
    };
    for key in array(&keys, "keys") {
        for field in [
            "/mopub0",
            "/mosec0",
            "/mosrv0_spec_derived",
            "/zbase32_of_public_key",
        ] {
            push(key, field);
        }
    }
    for case in array(&keys, "printable_decoding") {
        push(case, "/input");
    }
    for case in array(&records, "records") {
        push(case, "/expected/id_printable");
        push(case, "/expected/address_printable");
    }
    for case in array(&records, "moref0_decoding") {
        push(case, "/input");
    }
    for case in array(&encrypted, "examples") {
        push(case, "/mocryptsec0");
    }
    for case in array(&encrypted, "printable_parse_cases") {
        push(case, "/input");
    }
    // Whole records in their printable form, and kinds and timestamps.
    for case in array(&records, "records").iter().take(3) {
        if let Some(bytes) = hex_at(case, "/expected/record_hex") {
            texts.push(mosaic_core::printable::encode(
                mosaic_core::printable::Prefix::Record,
                &bytes,
            ));
        }
    }
    for text in [
        "microblog",
        "0x000000010001001c",
        "1c",
        "1732829915000000000",
        "2024-11-28T21:38:07.5Z",
        "2016-12-31T23:59:60Z",
        "2024-11-28 22:38:07+01:00",
    ] {
        texts.push(text.to_owned());
    }
    assert!(texts.len() >= 50, "only {} printable inputs", texts.len());
    let inputs: Vec<Vec<u8>> = texts.into_iter().map(String::into_bytes).collect();
    with_mutations(4, &inputs, fuzz_printable);
}

#[test]
fn random_bytes_never_break_a_fuzzer() {
    let mut rng = Rng::new(5);
    for _ in 0..RANDOM_INPUTS {
        let input = rng.input(1200);
        fuzz_record(&input);
        fuzz_filter(&input);
        fuzz_bootstrap(&input);
        fuzz_printable(&input);
    }
}

#[test]
fn random_bodies_behind_valid_headers_reach_the_element_and_tag_parsers() {
    let mut rng = Rng::new(6);
    for _ in 0..RANDOM_INPUTS {
        // A filter header of the right length, then random words.
        let words = 1 + rng.below(12);
        let mut filter = ((8 + 8 * words) as u16).to_le_bytes().to_vec();
        filter.extend_from_slice(&[0; 6]);
        let mut at = 0;
        while at < words {
            let take = 1 + rng.below(words - at);
            let types = [0x01, 0x02, 0x03, 0x04, 0x05, 0x80, 0x81, 0x84, 0x85, 0x06];
            filter.push(types[rng.below(types.len())]);
            filter.push(take as u8);
            filter.extend_from_slice(&[0; 6]);
            filter.extend(
                rng.input(8 * (take - 1) + 1)
                    .into_iter()
                    .take(8 * (take - 1)),
            );
            filter.resize(8 + 8 * (at + take), 0);
            at += take;
        }
        fuzz_filter(&filter);

        // A tag set of random tags.
        let mut tags = Vec::new();
        for _ in 0..rng.below(5) {
            let value = rng.input(40);
            tags.extend_from_slice(&((4 + value.len()) as u16).to_le_bytes());
            tags.extend_from_slice(&(rng.below(0x30) as u16).to_le_bytes());
            tags.extend_from_slice(&value);
        }
        fuzz_record(&tags);
    }
}

// Enabled with `mosaic_core::fuzzing::fuzz_message`: the message codec's
// round trip over the spec-derived messages and the parse cases.

#[test]
fn message_fuzzer_over_vectors_and_mutations() {
    use mosaic_core::fuzzing::fuzz_message;
    let messages = load("messages.json");
    let mut inputs = Vec::new();
    for case in array(&messages, "messages") {
        inputs.extend(hex_at(case, "/spec_0_8_0_derived_hex"));
        inputs.extend(hex_at(case, "/reference_hex"));
    }
    for case in array(&messages, "parse_cases") {
        inputs.extend(hex_at(case, "/hex"));
    }
    let decoded = inputs
        .iter()
        .filter(|i| mosaic_core::Message::decode(i).is_ok())
        .count();
    assert!(decoded >= 10, "only {decoded} vector messages decoded");
    with_mutations(7, &inputs, fuzz_message);
    let mut rng = Rng::new(8);
    for _ in 0..RANDOM_INPUTS {
        fuzz_message(&rng.input(1200));
    }
}
