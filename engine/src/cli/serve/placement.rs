//! CPU placement for `sluice serve`: which cores run shards, and which run
//! everything else (HTTP workers, log syncers, maintenance, recovery,
//! plugin compilation).
//!
//! The process may only use the cores of the affinity mask it started with
//! (systemd's `CPUAffinity=`, or `taskset`). Shards take `shard_cores`, or
//! the first cores of that mask; the other threads get `http_cores`, or the
//! rest of the mask. [`confine_current_thread`] puts the main thread on the
//! "other" cores before the engine spawns anything, so every thread inherits
//! that mask and only the shard threads move (each to its own core).
//!
//! Invariant: every core chosen lies inside the starting mask; a core listed
//! in the config outside it is an error at start, never a silent override
//! of what systemd was told.

use std::fmt;
use std::io;

use crate::config::Config;

/// Where shards and the other threads run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Core of shard `i` at index `i`.
    pub shard_cores: Vec<usize>,
    /// Cores for every thread that is not a shard.
    pub other_cores: Vec<usize>,
    /// Things the operator should know (oversubscription, shared cores).
    pub notes: Vec<String>,
}

/// A configured core the process may not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "config key `{key}` lists core {core}, but this process may only run on cores {allowed}; \
     list cores from that set, or widen systemd's CPUAffinity= (or the taskset mask)"
)]
pub struct PlacementError {
    pub key: &'static str,
    pub core: usize,
    pub allowed: CoreList,
}

/// A set of cores printed the way `CPUAffinity=` and `taskset -c` write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreList(pub Vec<usize>);

impl fmt::Display for CoreList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cores = self.0.clone();
        cores.sort_unstable();
        cores.dedup();
        let mut first = true;
        let mut i = 0;
        while i < cores.len() {
            let mut j = i;
            while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
                j += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if j > i {
                write!(f, "{}-{}", cores[i], cores[j])?;
            } else {
                write!(f, "{}", cores[i])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

/// Chooses the cores, given the cores the process may use (`allowed`,
/// non-empty) and the config.
pub fn plan(allowed: &[usize], config: &Config) -> Result<Placement, PlacementError> {
    let mut allowed = allowed.to_vec();
    allowed.sort_unstable();
    allowed.dedup();
    assert!(
        !allowed.is_empty(),
        "a running process has at least one core"
    );
    let check =
        |key: &'static str, cores: &[usize]| match cores.iter().find(|c| !allowed.contains(c)) {
            Some(&core) => Err(PlacementError {
                key,
                core,
                allowed: CoreList(allowed.clone()),
            }),
            None => Ok(()),
        };
    check("shard_cores", &config.shard_cores)?;
    check("http_cores", &config.http_cores)?;

    let mut notes = Vec::new();
    let n = config.shard_count(allowed.len());
    let shard_cores: Vec<usize> = if !config.shard_cores.is_empty() {
        config.shard_cores.iter().copied().take(n).collect()
    } else {
        if n > allowed.len() {
            notes.push(format!(
                "{n} shards on {} cores: some cores run two shards; fewer shards usually run faster",
                allowed.len()
            ));
        }
        (0..n).map(|i| allowed[i % allowed.len()]).collect()
    };
    let other_cores: Vec<usize> = if !config.http_cores.is_empty() {
        if config.http_cores.iter().any(|c| shard_cores.contains(c)) {
            notes.push(format!(
                "http_cores ({}) overlap the shard cores ({}): HTTP work will slow those shards",
                CoreList(config.http_cores.clone()),
                CoreList(shard_cores.clone())
            ));
        }
        config.http_cores.clone()
    } else {
        let free: Vec<usize> = allowed
            .iter()
            .copied()
            .filter(|c| !shard_cores.contains(c))
            .collect();
        if free.is_empty() {
            notes.push(format!(
                "every core ({}) runs a shard, so HTTP and background threads share them; \
                 leave one free (shards = {}) to keep them apart",
                CoreList(allowed.clone()),
                allowed.len().saturating_sub(1).max(1)
            ));
            allowed.clone()
        } else {
            free
        }
    };
    Ok(Placement {
        shard_cores,
        other_cores,
        notes,
    })
}

/// The cores the calling thread may run on.
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}

/// Restricts the calling thread (and every thread it spawns later) to `cores`.
pub fn confine_current_thread(cores: &[usize]) -> io::Result<()> {
    if let Some(&c) = cores.iter().find(|&&c| c >= libc::CPU_SETSIZE as usize) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "core {c} is beyond the {} cores an affinity mask can name",
                libc::CPU_SETSIZE
            ),
        ));
    }
    // SAFETY: as above; every index was checked against CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(shards: usize, shard_cores: &[usize], http_cores: &[usize]) -> Config {
        Config {
            shards,
            shard_cores: shard_cores.to_vec(),
            http_cores: http_cores.to_vec(),
            ..Config::default()
        }
    }

    #[test]
    fn shards_take_the_first_allowed_cores_and_the_rest_run_everything_else() {
        // As under CPUAffinity=2-7 with shards = 4.
        let p = plan(&[2, 3, 4, 5, 6, 7], &cfg(4, &[], &[])).unwrap();
        assert_eq!(p.shard_cores, vec![2, 3, 4, 5]);
        assert_eq!(p.other_cores, vec![6, 7]);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn one_shard_per_allowed_core_by_default_shares_cores_and_says_so() {
        let p = plan(&[2, 3], &cfg(0, &[], &[])).unwrap();
        assert_eq!(p.shard_cores, vec![2, 3]);
        assert_eq!(p.other_cores, vec![2, 3]);
        assert!(p.notes[0].contains("shards = 1"), "{:?}", p.notes);
    }

    #[test]
    fn configured_cores_outside_the_mask_are_refused_naming_the_mask() {
        let e = plan(&[2, 3, 4, 5], &cfg(0, &[0, 1], &[])).unwrap_err();
        assert_eq!((e.key, e.core), ("shard_cores", 0));
        let msg = e.to_string();
        assert!(msg.contains("2-5") && msg.contains("CPUAffinity"), "{msg}");
        let e = plan(&[2, 3, 4, 5], &cfg(0, &[2], &[9])).unwrap_err();
        assert_eq!((e.key, e.core), ("http_cores", 9));
    }

    #[test]
    fn explicit_lists_are_used_as_given() {
        let p = plan(&[0, 1, 2, 3], &cfg(0, &[3, 2], &[0])).unwrap();
        assert_eq!(p.shard_cores, vec![3, 2]);
        assert_eq!(p.other_cores, vec![0]);
        let p = plan(&[0, 1, 2, 3], &cfg(1, &[3, 2], &[])).unwrap();
        assert_eq!(p.shard_cores, vec![3]);
        assert_eq!(p.other_cores, vec![0, 1, 2]);
    }

    #[test]
    fn more_shards_than_cores_wrap_around_with_a_note() {
        let p = plan(&[0, 1], &cfg(3, &[], &[])).unwrap();
        assert_eq!(p.shard_cores, vec![0, 1, 0]);
        assert!(p.notes[0].contains("3 shards on 2 cores"), "{:?}", p.notes);
    }

    #[test]
    fn core_lists_print_like_cpuaffinity() {
        assert_eq!(CoreList(vec![7, 2, 3, 4, 9]).to_string(), "2-4,7,9");
        assert_eq!(CoreList(vec![0]).to_string(), "0");
    }

    #[test]
    fn the_calling_thread_can_be_confined_to_its_own_cores() {
        let cores = allowed_cores().unwrap();
        assert!(!cores.is_empty());
        std::thread::spawn(move || {
            confine_current_thread(&cores[..1]).unwrap();
            assert_eq!(allowed_cores().unwrap(), cores[..1].to_vec());
            // Threads spawned now inherit the mask.
            let inner = std::thread::spawn(allowed_cores).join().unwrap().unwrap();
            assert_eq!(inner, cores[..1].to_vec());
        })
        .join()
        .unwrap();
    }
}
