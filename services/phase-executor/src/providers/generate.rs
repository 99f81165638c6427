//! A seeded generator of JSON Schema instances, used by the offline provider
//! to answer structured-output requests with something that validates.
//!
//! Supported keywords: `type` (one or a list), `properties`, `required`,
//! `additionalProperties` (as the schema of extra keys), `minProperties`,
//! `enum`, `const`, `items`, `minItems`/`maxItems`, `minLength`/`maxLength`,
//! `minimum`/`maximum` and their exclusive forms, integer `multipleOf`,
//! `$ref` to `#/...` pointers (such as `#/$defs/x`), `allOf` (merged),
//! `oneOf`/`anyOf` (one branch picked by the seed). `pattern` is satisfied by
//! reusing a prompt token that matches it, or, for patterns that begin with a
//! literal prefix (`^/slots/`), by the prefix followed by a word. Other
//! keywords (`format`, `uniqueItems`, `prefixItems`, `not`, `if`) are not
//! generated for; the offline provider validates the result and retries with
//! new draws, so they fail loudly rather than silently.
//!
//! A *guide* value, when given, shapes the output: arrays keep its length,
//! objects its optional keys, identifier-like strings (no whitespace, such as
//! slot names and paths) are kept, and prose strings are redrawn from the
//! prompt's words with about as many words. The offline provider takes the
//! guide from a fenced ```json example in the prompt that already validates,
//! which is how a prompt's "example answer" turns into varied, applicable
//! output.

use serde_json::{Map, Value, json};

use orchestra_kit::seed::SplitMix64;

/// Nesting beyond this is refused: a recursive schema must bottom out.
const MAX_DEPTH: usize = 24;
/// Beyond this depth optional properties are left out and arrays take their
/// minimum length, so recursive schemas such as UI trees stay small.
const SHALLOW_DEPTH: usize = 4;

/// Why no instance could be generated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot generate for schema at `{location}`: {reason}")]
pub struct GenerateError {
    /// JSON pointer of the schema location, inside the instance.
    pub location: String,
    /// What could not be satisfied.
    pub reason: String,
}

/// The numbers offline output varies by: kit's splitmix64 sequence, with
/// the ranges a schema asks for. Not for anything that needs
/// unpredictability.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    /// Starts a sequence from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// Returns the next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Returns a number in `0..n`, or 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Returns a number in `low..=high` (`low` when the range is empty).
    pub fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = high.abs_diff(low).saturating_add(1);
        low.saturating_add_unsigned(self.below(span))
    }

    /// Returns a fraction in `0.0..1.0`.
    pub fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks one item, or `None` from an empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        items.get(index)
    }
}

/// FNV-1a over the parts, separated so ("ab", "c") and ("a", "bc") differ;
/// the offline provider derives its stream from this and the seed.
pub fn fingerprint(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xFF)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    hash
}

/// Generates instances of one root schema from a seeded stream and a
/// vocabulary taken from the prompt.
#[derive(Debug)]
pub struct Generator<'a> {
    root: &'a Value,
    rng: Rng,
    /// Plain words for prose, lowercased, in prompt order, without repeats.
    words: Vec<String>,
    /// Every whitespace-separated prompt token, trimmed of quotes and
    /// punctuation, for strings that must match a pattern.
    tokens: Vec<String>,
}

impl<'a> Generator<'a> {
    /// Makes a generator for `root` whose strings come from `prompt`.
    pub fn new(root: &'a Value, rng: Rng, prompt: &str) -> Self {
        let tokens: Vec<String> = prompt
            .split_whitespace()
            .map(|token| token.trim_matches(|c: char| "`\"',;:()[]{}<>".contains(c)))
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect();
        let mut words: Vec<String> = Vec::new();
        for token in &tokens {
            let word = token.trim_end_matches(['.', '!', '?']).to_lowercase();
            let plain = word.chars().all(|c| c.is_ascii_alphabetic() || c == '\'');
            if plain && (3..=14).contains(&word.len()) && !words.contains(&word) {
                words.push(word);
            }
        }
        if words.is_empty() {
            words = ["offline", "draft", "answer"].map(str::to_owned).to_vec();
        }
        Self {
            root,
            rng,
            words,
            tokens,
        }
    }

    /// Returns the generator's random stream, for callers that draw more.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Generates one instance of the root schema, shaped by `guide`.
    pub fn generate(&mut self, guide: Option<&Value>) -> Result<Value, GenerateError> {
        self.value(self.root, guide, "", 0)
    }

    /// Returns `count` words of prose, the first capitalised.
    pub fn prose(&mut self, count: usize) -> String {
        let mut text = String::new();
        for index in 0..count.max(1) {
            let word = self.rng.pick(&self.words).cloned().unwrap_or_default();
            if index == 0 {
                let mut chars = word.chars();
                if let Some(first) = chars.next() {
                    text.extend(first.to_uppercase());
                    text.push_str(chars.as_str());
                }
            } else {
                text.push(' ');
                text.push_str(&word);
            }
        }
        text
    }

    fn value(
        &mut self,
        schema: &Value,
        guide: Option<&Value>,
        location: &str,
        depth: usize,
    ) -> Result<Value, GenerateError> {
        let fail = |reason: &str| GenerateError {
            location: location.to_owned(),
            reason: reason.to_owned(),
        };
        if depth > MAX_DEPTH {
            return Err(fail("schema nests too deeply"));
        }
        let object = match schema {
            Value::Bool(true) => return Ok(self.unconstrained(guide)),
            Value::Bool(false) => return Err(fail("the schema is `false`")),
            Value::Object(object) => object,
            _ => return Err(fail("a schema must be an object or a boolean")),
        };
        if let Some(reference) = object.get("$ref") {
            let target = self
                .resolve(reference)
                .ok_or_else(|| fail("`$ref` must point inside the schema, as `#/...`"))?;
            // Keywords beside `$ref` still apply (2020-12), so merge them in.
            let mut merged = merge_schemas(&Value::Object(without(object, "$ref")), target);
            if merged.is_empty() {
                merged = Map::new();
            }
            return self.value(&Value::Object(merged), guide, location, depth + 1);
        }
        if let Some(all) = object.get("allOf").and_then(Value::as_array) {
            let mut merged = without(object, "allOf");
            for part in all {
                let part = self.dereference(part);
                merged = merge_schemas(&Value::Object(merged), part);
            }
            return self.value(&Value::Object(merged), guide, location, depth + 1);
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(branches) = object.get(keyword).and_then(Value::as_array) {
                let branch = self
                    .choose_branch(branches, guide)
                    .ok_or_else(|| fail("`oneOf`/`anyOf` has no branches"))?;
                let merged = merge_schemas(&Value::Object(without(object, keyword)), branch);
                return self.value(&Value::Object(merged), guide, location, depth + 1);
            }
        }
        if let Some(constant) = object.get("const") {
            return Ok(constant.clone());
        }
        if let Some(options) = object.get("enum").and_then(Value::as_array) {
            return self
                .rng
                .pick(options)
                .cloned()
                .ok_or_else(|| fail("`enum` is empty"));
        }
        match self.type_of(object, guide).as_str() {
            "object" => self.object(object, guide, location, depth),
            "array" => self.array(object, guide, location, depth),
            "string" => self
                .string(object, guide)
                .ok_or_else(|| fail("no string satisfies `pattern` and the length bounds")),
            "integer" => self
                .integer(object)
                .ok_or_else(|| fail("the integer bounds are empty")),
            "number" => self
                .number(object)
                .ok_or_else(|| fail("the number bounds are empty")),
            "boolean" => Ok(Value::Bool(self.rng.below(2) == 1)),
            "null" => Ok(Value::Null),
            "any" => Ok(self.unconstrained(guide)),
            other => Err(fail(&format!("unknown type `{other}`"))),
        }
    }

    /// Picks the schema's type: the guide's when allowed, else by the seed;
    /// without `type`, from the keywords present, else "any".
    fn type_of(&mut self, schema: &Map<String, Value>, guide: Option<&Value>) -> String {
        let guide_type = guide.map(json_type);
        let allowed: Vec<&str> = match schema.get("type") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => {
                let inferred = if [
                    "properties",
                    "required",
                    "additionalProperties",
                    "minProperties",
                ]
                .iter()
                .any(|k| schema.contains_key(*k))
                {
                    "object"
                } else if ["items", "minItems", "maxItems"]
                    .iter()
                    .any(|k| schema.contains_key(*k))
                {
                    "array"
                } else if ["pattern", "minLength", "maxLength"]
                    .iter()
                    .any(|k| schema.contains_key(*k))
                {
                    "string"
                } else if ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
                    .iter()
                    .any(|k| schema.contains_key(*k))
                {
                    "number"
                } else {
                    "any"
                };
                vec![inferred]
            }
        };
        if let Some(guide_type) = guide_type
            && (allowed.contains(&guide_type)
                || (guide_type == "integer" && allowed.contains(&"number")))
        {
            return guide_type.to_owned();
        }
        self.rng
            .pick(&allowed)
            .map_or_else(|| "any".to_owned(), |kind| (*kind).to_owned())
    }

    fn object(
        &mut self,
        schema: &Map<String, Value>,
        guide: Option<&Value>,
        location: &str,
        depth: usize,
    ) -> Result<Value, GenerateError> {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let extra_schema = match schema.get("additionalProperties") {
            Some(Value::Bool(false)) => None,
            Some(extra) => Some(extra.clone()),
            None => Some(Value::Bool(true)),
        };
        let guide_object = guide.and_then(Value::as_object);
        let mut out = Map::new();

        // Sorted keys, so the output does not depend on serde_json's map order.
        let mut names: Vec<&String> = properties.keys().collect();
        names.sort();
        for name in names {
            let include = if required.contains(&name.as_str()) {
                true
            } else if let Some(guide_object) = guide_object {
                guide_object.contains_key(name)
            } else {
                depth < SHALLOW_DEPTH && self.rng.below(2) == 1
            };
            if include {
                let child = self.value(
                    &properties[name],
                    guide_object.and_then(|g| g.get(name)),
                    &format!("{location}/{name}"),
                    depth + 1,
                )?;
                out.insert(name.clone(), child);
            }
        }

        // Required keys without a property schema, then guide keys and
        // `minProperties`, all take the `additionalProperties` schema.
        let mut extra_keys: Vec<String> = required
            .iter()
            .filter(|name| !out.contains_key(**name))
            .map(|name| (*name).to_owned())
            .collect();
        if let Some(guide_object) = guide_object {
            let mut keys: Vec<&String> = guide_object
                .keys()
                .filter(|key| !properties.contains_key(*key))
                .collect();
            keys.sort();
            extra_keys.extend(keys.into_iter().cloned());
        }
        let min_properties = schema
            .get("minProperties")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        let mut draws = 0;
        while out.len() + extra_keys.len() < min_properties && draws < 64 {
            draws += 1;
            let key = self.prose(1).to_lowercase();
            if !out.contains_key(&key)
                && !extra_keys.contains(&key)
                && !properties.contains_key(&key)
            {
                extra_keys.push(key);
            }
        }
        for key in extra_keys {
            let Some(extra_schema) = &extra_schema else {
                return Err(GenerateError {
                    location: location.to_owned(),
                    reason: format!("`{key}` is needed but `additionalProperties` is false"),
                });
            };
            let child = self.value(
                extra_schema,
                guide_object.and_then(|g| g.get(&key)),
                &format!("{location}/{key}"),
                depth + 1,
            )?;
            out.insert(key, child);
        }
        Ok(Value::Object(out))
    }

    fn array(
        &mut self,
        schema: &Map<String, Value>,
        guide: Option<&Value>,
        location: &str,
        depth: usize,
    ) -> Result<Value, GenerateError> {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .unwrap_or(min + 3)
            .max(min);
        let guide_items = guide.and_then(Value::as_array);
        let count = match guide_items {
            Some(items) => (items.len() as u64).clamp(min, max),
            None if depth >= SHALLOW_DEPTH => min,
            None => min + self.rng.below(max.min(min + 2) - min + 1),
        };
        let item_schema = schema.get("items").cloned().unwrap_or(Value::Bool(true));
        let mut items = Vec::new();
        for index in 0..count as usize {
            let item_guide = guide_items.and_then(|items| items.get(index));
            items.push(self.value(
                &item_schema,
                item_guide,
                &format!("{location}/{index}"),
                depth + 1,
            )?);
        }
        Ok(Value::Array(items))
    }

    fn string(&mut self, schema: &Map<String, Value>, guide: Option<&Value>) -> Option<Value> {
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |max| max as usize);
        let guide = guide.and_then(Value::as_str);
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            return self.patterned(pattern, min, max, guide).map(Value::String);
        }
        let fits = |text: &str| (min..=max).contains(&text.chars().count());
        let words = match guide {
            Some(text) if !text.contains(char::is_whitespace) && fits(text) => {
                return Some(Value::String(text.to_owned()));
            }
            Some(text) => text.split_whitespace().count().max(1),
            None => usize::try_from(self.rng.between(2, 8)).unwrap_or(2),
        };
        let mut text = self.prose(words);
        while text.chars().count() < min {
            text.push(' ');
            text.push_str(&self.prose(1).to_lowercase());
        }
        if text.chars().count() > max {
            text = text
                .chars()
                .take(max)
                .collect::<String>()
                .trim_end()
                .to_owned();
            while text.chars().count() < min {
                text.push('x');
            }
        }
        Some(Value::String(text))
    }

    /// A string matching `pattern`: the guide, a matching prompt token, or a
    /// literal prefix plus a word, checked with the real regex engine.
    fn patterned(
        &mut self,
        pattern: &str,
        min: usize,
        max: usize,
        guide: Option<&str>,
    ) -> Option<String> {
        let mut bounds = json!({ "type": "string", "pattern": pattern, "minLength": min });
        if max != usize::MAX {
            bounds["maxLength"] = json!(max);
        }
        let matcher = jsonschema::validator_for(&bounds).ok()?;
        let matches = |text: &str| matcher.is_valid(&json!(text));
        if let Some(guide) = guide
            && matches(guide)
        {
            return Some(guide.to_owned());
        }
        let candidates: Vec<String> = self
            .tokens
            .iter()
            .filter(|token| matches(token))
            .cloned()
            .collect();
        if let Some(token) = self.rng.pick(&candidates) {
            return Some(token.clone());
        }
        let prefix = literal_prefix(pattern)?;
        for _ in 0..8 {
            let candidate = format!("{prefix}{}", self.prose(1).to_lowercase());
            if matches(&candidate) {
                return Some(candidate);
            }
        }
        None
    }

    fn integer(&mut self, schema: &Map<String, Value>) -> Option<Value> {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        let mut low = bound("minimum")
            .map(f64::ceil)
            .or(bound("exclusiveMinimum").map(|v| v.floor() + 1.0));
        let mut high = bound("maximum")
            .map(f64::floor)
            .or(bound("exclusiveMaximum").map(|v| v.ceil() - 1.0));
        match (low, high) {
            (None, None) => (low, high) = (Some(0.0), Some(100.0)),
            (Some(l), None) => high = Some(l + 100.0),
            (None, Some(h)) => low = Some(h - 100.0),
            _ => {}
        }
        let (low, high) = (low? as i64, high? as i64);
        if low > high {
            return None;
        }
        let step = schema
            .get("multipleOf")
            .and_then(Value::as_i64)
            .filter(|step| *step > 0)
            .unwrap_or(1);
        let (first, last) = (
            low.div_euclid(step) + i64::from(low.rem_euclid(step) != 0),
            high.div_euclid(step),
        );
        if first > last {
            return None;
        }
        Some(json!(self.rng.between(first, last) * step))
    }

    fn number(&mut self, schema: &Map<String, Value>) -> Option<Value> {
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        if schema.get("multipleOf").is_some() {
            return self.integer(schema);
        }
        let low = bound("minimum")
            .or(bound("exclusiveMinimum"))
            .unwrap_or(0.0);
        let high = bound("maximum")
            .or(bound("exclusiveMaximum"))
            .unwrap_or(low + 100.0);
        if low > high {
            return None;
        }
        let value = ((low + (high - low) * self.rng.fraction()) * 100.0).round() / 100.0;
        let exclusive_low = bound("exclusiveMinimum").is_some_and(|l| value <= l);
        let exclusive_high = bound("exclusiveMaximum").is_some_and(|h| value >= h);
        let value = if exclusive_low || exclusive_high {
            (low + high) / 2.0
        } else {
            value.clamp(low, high)
        };
        serde_json::Number::from_f64(value).map(Value::Number)
    }

    fn unconstrained(&mut self, guide: Option<&Value>) -> Value {
        match guide {
            Some(Value::String(_)) | None => self.string(&Map::new(), guide).unwrap_or(Value::Null),
            Some(other) => other.clone(),
        }
    }

    fn choose_branch<'s>(
        &mut self,
        branches: &'s [Value],
        guide: Option<&Value>,
    ) -> Option<&'s Value> {
        if let Some(guide) = guide {
            let kind = json_type(guide);
            let fitting = branches.iter().find(|branch| {
                let branch = self.dereference(branch);
                match branch.get("type") {
                    Some(Value::String(one)) => one == kind,
                    Some(Value::Array(many)) => many.iter().any(|t| t == kind),
                    _ => branch.get("const").is_some_and(|c| c == guide),
                }
            });
            if fitting.is_some() {
                return fitting;
            }
        }
        self.rng.pick(branches)
    }

    fn resolve(&self, reference: &Value) -> Option<&'a Value> {
        let pointer = reference.as_str()?.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn dereference<'s>(&self, schema: &'s Value) -> &'s Value
    where
        'a: 's,
    {
        schema
            .get("$ref")
            .and_then(|reference| self.resolve(reference))
            .unwrap_or(schema)
    }
}

/// Shallow-merges two object schemas: `properties` and `required` are
/// unioned, other keywords from `overlay` win.
fn merge_schemas(base: &Value, overlay: &Value) -> Map<String, Value> {
    let mut merged = base.as_object().cloned().unwrap_or_default();
    let Some(overlay) = overlay.as_object() else {
        return merged;
    };
    for (key, value) in overlay {
        match (key.as_str(), merged.get_mut(key)) {
            ("properties", Some(Value::Object(existing))) => {
                if let Some(extra) = value.as_object() {
                    existing.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            ("required", Some(Value::Array(existing))) => {
                for name in value.as_array().into_iter().flatten() {
                    if !existing.contains(name) {
                        existing.push(name.clone());
                    }
                }
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

fn without(object: &Map<String, Value>, keyword: &str) -> Map<String, Value> {
    let mut copy = object.clone();
    copy.remove(keyword);
    copy
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The literal text a `^`-anchored pattern starts with, up to its first
/// regex metacharacter; `None` when it has no anchored literal prefix.
fn literal_prefix(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix('^')?;
    let prefix: String = rest
        .chars()
        .take_while(|c| !"\\.^$|?*+()[]{}".contains(*c))
        .collect();
    (!prefix.is_empty()).then_some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(schema: &Value, seed: u64, prompt: &str) -> Value {
        Generator::new(schema, Rng::new(seed), prompt)
            .generate(None)
            .expect("generates")
    }

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let (mut first, mut second) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
            let n = first.between(-3, 3);
            assert_eq!(n, second.between(-3, 3));
            assert!((-3..=3).contains(&n));
            let fraction = first.fraction();
            assert_eq!(fraction.to_bits(), second.fraction().to_bits());
            assert!((0.0..1.0).contains(&fraction));
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn covers_the_common_keywords() {
        let schema = json!({
            "type": "object",
            "required": ["name", "count", "ratio", "kind", "fixed", "tags", "nested", "either", "id"],
            "properties": {
                "name": {"type": "string", "minLength": 30, "maxLength": 40},
                "count": {"type": "integer", "minimum": 10, "maximum": 20, "multipleOf": 5},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "kind": {"enum": ["x", "y"]},
                "fixed": {"const": 42},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 3},
                "nested": {"$ref": "#/$defs/nested"},
                "either": {"oneOf": [{"type": "boolean"}, {"type": "null"}]},
                "id": {"type": "string", "pattern": "^item-[a-z]+$"}
            },
            "$defs": {"nested": {"allOf": [{"required": ["a"], "properties": {"a": {"type": "integer"}}}, {"required": ["b"], "properties": {"b": {"type": "boolean"}}}]}}
        });
        let validator = jsonschema::validator_for(&schema).expect("compiles");
        for seed in 0..50 {
            let instance = generate(
                &schema,
                seed,
                "item-widget and a few plain words for the prose",
            );
            assert!(validator.is_valid(&instance), "seed {seed}: {instance}");
        }
    }

    #[test]
    fn a_guide_keeps_identifiers_and_redraws_prose() {
        let schema = json!({"type": "object", "required": ["slot", "summary"], "properties": {"slot": {"type": "string"}, "summary": {"type": "string"}, "extra": {"type": "string"}}});
        let guide = json!({"slot": "hero", "summary": "three word summary"});
        let out = Generator::new(&schema, Rng::new(3), "clearer call to action")
            .generate(Some(&guide))
            .expect("generates");
        assert_eq!(out["slot"], "hero");
        assert_eq!(
            out["summary"]
                .as_str()
                .map(|s| s.split_whitespace().count()),
            Some(3)
        );
        assert!(out.get("extra").is_none(), "optional keys follow the guide");
    }

    #[test]
    fn impossible_schemas_say_where() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 1}}});
        let error = Generator::new(&schema, Rng::new(0), "")
            .generate(None)
            .expect_err("fails");
        assert_eq!(error.location, "/a");
        assert_eq!(literal_prefix("^/slots/"), Some("/slots/".to_owned()));
        assert_eq!(literal_prefix("[a-z]+"), None);
    }
}
