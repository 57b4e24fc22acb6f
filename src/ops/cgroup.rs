//! The memory limit of this process's cgroup (a container's `--memory`, a pod's
//! `resources.limits.memory`), from cgroup v2's `memory.max` or v1's
//! `memory.limit_in_bytes`, so that defaults can fit in it.

use std::path::{Path, PathBuf};

/// Limits at or above this mean "no limit" (v1 reports a number near 2^63).
const UNLIMITED: u64 = 1 << 60;

/// This process's cgroup memory limit in bytes, if it has one.
pub fn memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    memory_limit_in(&own, Path::new("/sys/fs/cgroup"), |p| {
        std::fs::read_to_string(p).ok()
    })
}

/// The limit, given `/proc/self/cgroup`'s text, the cgroup mount and a file reader.
fn memory_limit_in(own: &str, mount: &Path, read: impl Fn(&Path) -> Option<String>) -> Option<u64> {
    // Lines are `ID:CONTROLLERS:PATH`: v2's is `0::PATH`, v1's memory one `N:memory:PATH`.
    let mut candidates: Vec<PathBuf> = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if controllers.is_empty() {
            candidates.push(mount.join(rel).join("memory.max"));
            candidates.push(mount.join("memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            let v1 = mount.join("memory");
            candidates.push(v1.join(rel).join("memory.limit_in_bytes"));
            // Inside a container the cgroup's own folder is mounted as the root.
            candidates.push(v1.join("memory.limit_in_bytes"));
        }
    }
    candidates
        .iter()
        .find_map(|p| read(p))
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&limit| limit < UNLIMITED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(entries: &'a [(&'a str, &'a str)]) -> impl Fn(&Path) -> Option<String> + 'a {
        move |p| {
            entries
                .iter()
                .find(|(path, _)| Path::new(path) == p)
                .map(|(_, text)| text.to_string())
        }
    }

    #[test]
    fn v2_v1_container_and_unlimited() {
        let mount = Path::new("/sys/fs/cgroup");
        let v2 = files(&[("/sys/fs/cgroup/kubepods/pod1/memory.max", "100663296\n")]);
        assert_eq!(
            memory_limit_in("0::/kubepods/pod1\n", mount, v2),
            Some(96 << 20)
        );
        let v2_container = files(&[("/sys/fs/cgroup/memory.max", "67108864\n")]);
        assert_eq!(
            memory_limit_in("0::/\n", mount, v2_container),
            Some(64 << 20)
        );
        let v2_max = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(memory_limit_in("0::/\n", mount, v2_max), None);
        let v1 = files(&[(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "134217728",
        )]);
        let own = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n";
        assert_eq!(memory_limit_in(own, mount, v1), Some(128 << 20));
        let v1_container = files(&[("/sys/fs/cgroup/memory/memory.limit_in_bytes", "100663296")]);
        assert_eq!(memory_limit_in(own, mount, v1_container), Some(96 << 20));
        let v1_unlimited = files(&[(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712",
        )]);
        assert_eq!(memory_limit_in(own, mount, v1_unlimited), None);
        assert_eq!(memory_limit_in("", mount, files(&[])), None);
    }
}
