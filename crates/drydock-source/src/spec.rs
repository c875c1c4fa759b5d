use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// Where an image lives, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `docker-archive:PATH`: the output of `docker save` (plain or gzip-compressed).
    DockerArchive(PathBuf),
    /// `oci-archive:PATH`: a tar of an OCI image layout.
    OciArchive(PathBuf),
    /// `oci:DIR`: an OCI image layout directory.
    OciLayout(PathBuf),
    /// `dir:DIR`: skopeo's directory layout (`version`, `manifest.json`, blobs by hex digest).
    SkopeoDir(PathBuf),
    /// A bare path: the format is read from what it holds.
    Path(PathBuf),
    /// `-`: an archive on standard input.
    Stdin,
}

/// A parsed image argument: a location and, for OCI forms, an optional tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub location: Location,
    pub reference: Option<String>,
}

impl ImageSpec {
    /// Parses the skopeo-style forms `docker-archive:PATH`, `oci-archive:PATH[:REF]`,
    /// `oci:DIR[:REF]`, `dir:DIR`, `-`, or a bare path.
    pub fn parse(input: &str) -> Result<Self, SourceError> {
        let bad = |reason: &str| SourceError::BadSpec {
            input: input.into(),
            reason: reason.into(),
        };
        if input == "-" {
            return Ok(Self {
                location: Location::Stdin,
                reference: None,
            });
        }
        let (transport, rest) = match input.split_once(':') {
            Some((t @ ("docker-archive" | "oci-archive" | "oci" | "dir"), rest)) => (Some(t), rest),
            _ => (None, input),
        };
        if rest.is_empty() {
            return Err(bad("no path given"));
        }
        let (path, reference) = match transport {
            Some("oci" | "oci-archive") => split_reference(rest),
            _ => (PathBuf::from(rest), None),
        };
        let location = match transport {
            Some("docker-archive") => Location::DockerArchive(path),
            Some("oci-archive") => Location::OciArchive(path),
            Some("oci") => Location::OciLayout(path),
            Some("dir") => Location::SkopeoDir(path),
            _ => Location::Path(path),
        };
        Ok(Self {
            location,
            reference,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            Location::DockerArchive(p)
            | Location::OciArchive(p)
            | Location::OciLayout(p)
            | Location::SkopeoDir(p)
            | Location::Path(p) => Some(p),
            Location::Stdin => None,
        }
    }
}

/// `DIR:REF` where DIR exists keeps the whole string as the path only when no shorter prefix
/// exists, as skopeo does for paths holding a colon.
fn split_reference(rest: &str) -> (PathBuf, Option<String>) {
    if Path::new(rest).exists() {
        return (PathBuf::from(rest), None);
    }
    // A digest reference holds a colon itself: `dir:sha256:abc…` or `dir@sha256:abc…`.
    if let Some((dir, digest)) = rest.rsplit_once('@')
        && digest.starts_with("sha256:")
        && Path::new(dir).exists()
    {
        return (PathBuf::from(dir), Some(digest.to_owned()));
    }
    for (i, _) in rest.match_indices(':') {
        let (dir, reference) = (&rest[..i], &rest[i + 1..]);
        if Path::new(dir).exists() && !reference.is_empty() {
            return (PathBuf::from(dir), Some(reference.to_owned()));
        }
    }
    match rest.rsplit_once(':') {
        Some((dir, reference)) if !reference.contains('/') && !reference.is_empty() => {
            (PathBuf::from(dir), Some(reference.to_owned()))
        }
        _ => (PathBuf::from(rest), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_transports() {
        let spec = ImageSpec::parse("docker-archive:/tmp/a.tar").unwrap();
        assert_eq!(spec.location, Location::DockerArchive("/tmp/a.tar".into()));
        let spec = ImageSpec::parse("oci:/nonexistent/layout:v1").unwrap();
        assert_eq!(
            spec.location,
            Location::OciLayout("/nonexistent/layout".into())
        );
        assert_eq!(spec.reference.as_deref(), Some("v1"));
        let spec = ImageSpec::parse("oci-archive:/nonexistent/a.tar").unwrap();
        assert_eq!(
            spec.location,
            Location::OciArchive("/nonexistent/a.tar".into())
        );
        assert_eq!(spec.reference, None);
        assert_eq!(ImageSpec::parse("-").unwrap().location, Location::Stdin);
        assert_eq!(
            ImageSpec::parse("dir:/tmp/img").unwrap().location,
            Location::SkopeoDir("/tmp/img".into())
        );
        assert_eq!(
            ImageSpec::parse("x.tar").unwrap().location,
            Location::Path("x.tar".into())
        );
        assert!(ImageSpec::parse("oci:").is_err());
    }
}
