//! `${VAR}` interpolation in configuration strings.
//!
//! Interpolation runs on the parsed YAML tree, string by string, so a value that contains YAML
//! syntax cannot change the structure of the file. `${VAR:-default}` gives a default; `$${` is a
//! literal `${`. An unset variable without a default becomes the empty string and is reported, so
//! validation can say which variable a missing secret should have come from.

/// Expands `${VAR}` in `input` with `lookup`. Returns the expanded text and the names of the
/// variables that were unset and had no default.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(input.len());
    let mut missing = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {input:?}"))?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => missing.push(name.to_string()),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok((out, missing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "v4lue".to_string())
    }

    #[test]
    fn expands_defaults_and_escapes() {
        let (s, missing) = interpolate("a ${KEY} ${NOPE:-dflt} $${KEY} $5 ${GONE}", &env).unwrap();
        assert_eq!(s, "a v4lue dflt ${KEY} $5 ");
        assert_eq!(missing, vec!["GONE".to_string()]);
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(interpolate("${KEY", &env).is_err());
        assert!(interpolate("${BAD-NAME}", &env).is_err());
    }
}
