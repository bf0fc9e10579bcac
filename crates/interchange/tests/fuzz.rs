//! Fuzz target: the NDJSON interchange reader over mutants of real records. Any input gives
//! records or an error naming a line, never a panic; what it accepts writes back and reads
//! again to the same records.

use interchange::{NdjsonReader, Record, read_ndjson};

const SEED: &str = r#"{"ts":"2024-01-02T14:30:00Z","kind":"quote","symbol":"XYZ","bid":10.00,"ask":"10.02","bid_size":100,"ask_size":200}
{"ts":"2024-01-02T14:30:01.5Z","kind":"order_new","account":"A1","owner":"O1","symbol":"XYZ","side":"buy","qty":100,"price":null,"order_id":"o1","order_type":"market","tif":"day","decision_price":"9.99"}
{"ts":"2024-01-02T14:30:01.6Z","kind":"order_new","account":"A1","symbol":"XYZ","side":"sell","qty":"5","price":"10.05","order_id":"o2","order_type":"limit","tif":"gtc"}
{"ts":"2024-01-02T14:30:02Z","kind":"fill","account":"A1","symbol":"XYZ","side":"buy","qty":"100","price":"10.01","order_id":"o1","fill_id":"f1","liquidity":"taker","fee":"0.1"}
{"ts":"2024-01-02T14:30:03Z","kind":"order_cancel","account":"A1","symbol":"XYZ","order_id":"o2"}
{"ts":"2024-01-02T14:30:04Z","kind":"trade","symbol":"XYZ","price":"10.03","qty":"7","side":"sell"}
"#;

#[test]
fn fuzz_ndjson_interchange() {
    fuzzing::run("interchange-ndjson", &[SEED.as_bytes().to_vec()], |input| {
        let streamed: Vec<_> = NdjsonReader::new(input, "fuzz").collect();
        let Ok(records) = read_ndjson(input, "fuzz") else {
            assert!(
                streamed.last().is_some_and(Result::is_err),
                "the collected and the streamed reader agree on failing"
            );
            return;
        };
        assert_eq!(streamed.len(), records.len());
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("a record serializes") + "\n")
            .collect();
        let again: Vec<Record> =
            read_ndjson(text.as_bytes(), "again").expect("written records read back");
        assert_eq!(again.len(), records.len());
        for (a, b) in again.iter().zip(&records) {
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::to_value(b).unwrap()
            );
        }
    });
}
