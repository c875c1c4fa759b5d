use std::fmt;
use std::str::FromStr;

/// An OCI platform, `os/architecture[/variant]`, normalised the way containerd does
/// (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm64/v8` is `arm64`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        let os = os.to_ascii_lowercase();
        let (architecture, mut variant) = match (architecture, variant) {
            ("x86_64" | "x86-64", v) => ("amd64", v),
            ("aarch64", v) => ("arm64", v),
            ("armhf", _) => ("arm", Some("v7")),
            ("armel", _) => ("arm", Some("v6")),
            (a, v) => (a, v),
        };
        if architecture == "arm64" && variant == Some("v8") {
            variant = None;
        }
        let variant = variant.filter(|v| !v.is_empty()).map(str::to_owned);
        Self {
            os,
            architecture: architecture.to_owned(),
            variant,
        }
    }

    /// The platform of the machine drydock runs on, which is what `docker` pulls by default.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self::new("linux", arch, None)
    }

    /// Whether an index entry for `self` satisfies a request for `wanted`. A request without
    /// a variant accepts any variant.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(format!(
                "`{s}` is not a platform; expected os/arch[/variant], e.g. linux/arm64"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            "linux/arm/v7".parse::<Platform>().unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            "Linux/x86_64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/".parse::<Platform>().is_err());
    }

    #[test]
    fn a_request_without_variant_accepts_any() {
        let v7 = Platform::new("linux", "arm", Some("v7"));
        assert!(v7.satisfies(&Platform::new("linux", "arm", None)));
        assert!(!v7.satisfies(&Platform::new("linux", "arm", Some("v6"))));
        assert!(!v7.satisfies(&Platform::new("linux", "arm64", None)));
    }
}
