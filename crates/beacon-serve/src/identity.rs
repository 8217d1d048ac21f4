//! Who this pod is: from the downward API when Kubernetes provides it, else from the host.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Identity {
    /// `POD_NAME` (downward API), else the host name.
    pub pod: String,
    /// The StatefulSet ordinal: the number after the pod name's last `-`.
    pub ordinal: Option<u32>,
    pub namespace: Option<String>,
    pub node: Option<String>,
    pub pod_ip: Option<String>,
}

impl Identity {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let pod = var("POD_NAME")
            .or_else(hostname)
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            ordinal: ordinal(&pod),
            pod,
            namespace: var("POD_NAMESPACE"),
            node: var("NODE_NAME"),
            pod_ip: var("POD_IP"),
        }
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

/// `web-2` → 2. StatefulSet pods are named `<statefulset>-<ordinal>`.
pub fn ordinal(pod: &str) -> Option<u32> {
    let (_, n) = pod.rsplit_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::ordinal;

    #[test]
    fn ordinal_is_parsed_from_statefulset_pod_names() {
        assert_eq!(ordinal("beacon-0"), Some(0));
        assert_eq!(ordinal("my-release-beacon-12"), Some(12));
        assert_eq!(ordinal("beacon"), None);
        assert_eq!(ordinal("beacon-7f9c-x"), None);
        assert_eq!(ordinal("beacon-"), None);
        assert_eq!(ordinal("beacon-+1"), None);
    }
}
