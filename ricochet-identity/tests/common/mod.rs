//! Readers for the vector files in `tests/data/` (their format is described
//! in each file's header).

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Path of a file in `tests/data/`.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(name)
}

/// Contents of a file in `tests/data/`.
pub fn data(name: &str) -> String {
    std::fs::read_to_string(data_path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// One `[name]` record of a `field = value` file.
#[derive(Debug)]
pub struct Record {
    pub name: String,
    fields: BTreeMap<String, String>,
}

impl Record {
    pub fn get(&self, field: &str) -> &str {
        self.fields
            .get(field)
            .unwrap_or_else(|| panic!("record [{}] has no field `{field}`", self.name))
    }

    pub fn hex(&self, field: &str) -> Vec<u8> {
        hex::decode(self.get(field))
            .unwrap_or_else(|e| panic!("[{}] {field} is not hex: {e}", self.name))
    }

    pub fn hex_array<const N: usize>(&self, field: &str) -> [u8; N] {
        self.hex(field)
            .try_into()
            .unwrap_or_else(|_| panic!("[{}] {field} is not {N} bytes", self.name))
    }
}

/// All records of a `field = value` file.
pub fn records(name: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for line in data(name).lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(Record {
                name: section.to_owned(),
                fields: BTreeMap::new(),
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}: line without `=`: {line}"));
        let record = out
            .last_mut()
            .unwrap_or_else(|| panic!("{name}: field before the first [record]"));
        record
            .fields
            .insert(key.trim().to_owned(), value.trim().to_owned());
    }
    out
}

/// One record by name.
pub fn record(file: &str, name: &str) -> Record {
    records(file)
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{file} has no record [{name}]"))
}

/// The `input | expected` rows of a table file, with `\s`, `\t`, `\n` and
/// `<empty>` unescaped in the input.
pub fn table(name: &str) -> Vec<(String, String)> {
    data(name)
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (input, expected) = line
                .rsplit_once('|')
                .unwrap_or_else(|| panic!("{name}: row without `|`: {line}"));
            let input = input.trim();
            let input = if input == "<empty>" {
                String::new()
            } else {
                input
                    .replace("\\s", " ")
                    .replace("\\t", "\t")
                    .replace("\\n", "\n")
            };
            (input, expected.trim().to_owned())
        })
        .collect()
}
