//! Groups speaker embeddings by voice: spectral clustering on a pruned cosine-similarity graph,
//! with the number of speakers read from the Laplacian's largest eigengap.

use crate::error::DiarizeError;
use crate::linalg::symmetric_eigen;

/// How many speakers a clustering may find: `1 <= min <= max`, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeakerConstraint {
    min: usize,
    max: usize,
}

/// With no constraint, up to this many speakers are told apart: more is rare in one recording,
/// and every extra candidate count is another chance to split a voice in two.
const DEFAULT_MAX_SPEAKERS: usize = 8;

impl Default for SpeakerConstraint {
    fn default() -> Self {
        Self {
            min: 1,
            max: DEFAULT_MAX_SPEAKERS,
        }
    }
}

impl SpeakerConstraint {
    pub fn exactly(speakers: usize) -> Result<Self, DiarizeError> {
        Self::between(speakers, speakers)
    }

    pub fn between(min: usize, max: usize) -> Result<Self, DiarizeError> {
        if min == 0 || min > max {
            return Err(DiarizeError::BadSpeakerConstraint { min, max });
        }
        Ok(Self { min, max })
    }

    pub fn min(&self) -> usize {
        self.min
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// Below this many windows there is too little to build a graph from: one speaker, unless the
/// caller insists on more.
const MIN_SPECTRAL: usize = 10;
/// The eigen-decomposition is cubic in the number of windows; above this many, a spread-out
/// sample is clustered and the other windows join the nearest speaker.
const MAX_SPECTRAL: usize = 400;
/// Each row of the similarity graph keeps its strongest links: at least this many…
const MIN_NEIGHBOURS: usize = 6;
/// …or this fraction of all windows, whichever is more.
const NEIGHBOUR_FRACTION: f64 = 0.05;
/// Smaller clusters are too small to be a speaker: they are usually overlaps or noise.
const MIN_CLUSTER_SIZE: usize = 4;
/// How readily a new voice is told apart from the ones heard, 0–1: clusters whose mean
/// embeddings are more similar than [`Sensitivity::merge_cosine`] are the same voice split in
/// two. The default, 0.5, merges above a cosine of 0.7; 0 merges above 0.5 (fewer speakers),
/// 1 only above 0.9 (more).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensitivity(f64);

impl Sensitivity {
    pub const DEFAULT: Sensitivity = Sensitivity(0.5);

    /// `None` for a value outside 0–1.
    pub fn new(value: f64) -> Option<Self> {
        (0.0..=1.0).contains(&value).then_some(Sensitivity(value))
    }

    fn merge_cosine(self) -> f32 {
        (0.5 + 0.4 * self.0) as f32
    }
}

impl Default for Sensitivity {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Whether clustering `windows` embeddings under `range` reads them at all. Too few windows to
/// build a graph from are one speaker unless more are demanded, whatever their embeddings say,
/// so a caller that knows the count beforehand can skip the network.
pub fn compares_windows(windows: usize, range: SpeakerConstraint) -> bool {
    windows >= MIN_SPECTRAL || (range.min > 1 && windows > 0)
}

/// A cluster label (0-based, arbitrary order) for each embedding. The embeddings are not read
/// when [`compares_windows`] says so: they may then be empty.
pub fn cluster(
    embeddings: &[Vec<f32>],
    range: SpeakerConstraint,
    sensitivity: Sensitivity,
) -> Vec<usize> {
    let n = embeddings.len();
    if !compares_windows(n, range) {
        return vec![0; n];
    }
    let unit: Vec<Vec<f32>> = embeddings.iter().map(|e| normalised(e)).collect();
    let labels = if n < MIN_SPECTRAL {
        kmeans(&unit, range.min.min(n))
    } else if n <= MAX_SPECTRAL {
        spectral(&unit, range)
    } else {
        let sample: Vec<Vec<f32>> = (0..MAX_SPECTRAL)
            .map(|i| unit[i * n / MAX_SPECTRAL].clone())
            .collect();
        let sample_labels = spectral(&sample, range);
        let mut labels = assign_to_nearest(&unit, &centroids(&sample, &sample_labels));
        // One refinement with every window's vote moves the centres off the sample's noise.
        labels = assign_to_nearest(&unit, &centroids(&unit, &labels));
        labels
    };
    let labels = absorb_small_clusters(&unit, labels, range.min);
    merge_similar_clusters(&unit, labels, range.min, sensitivity)
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

fn spectral(unit: &[Vec<f32>], range: SpeakerConstraint) -> Vec<usize> {
    let n = unit.len();
    let mut affinity = vec![0.0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            affinity[i * n + j] = cosine(&unit[i], &unit[j]) as f64;
        }
    }
    // Keep only each row's strongest links: cross-speaker similarities are many and weak.
    let keep = MIN_NEIGHBOURS
        .max((NEIGHBOUR_FRACTION * n as f64).ceil() as usize)
        .min(n);
    let mut pruned = vec![0.0f64; n * n];
    for i in 0..n {
        let row = &affinity[i * n..(i + 1) * n];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        for &j in &order[..keep] {
            pruned[i * n + j] = row[j];
        }
    }
    let mut laplacian = vec![0.0f64; n * n];
    for i in 0..n {
        let mut degree = 0.0;
        for j in 0..n {
            if i != j {
                let w = 0.5 * (pruned[i * n + j] + pruned[j * n + i]);
                laplacian[i * n + j] = -w;
                degree += w.abs();
            }
        }
        laplacian[i * n + i] = degree;
    }
    let (values, vectors) = symmetric_eigen(&laplacian, n);

    let max = range.max.clamp(1, n - 1);
    let min = range.min.clamp(1, max);
    let k = (min..=max)
        .max_by(|&a, &b| (values[a] - values[a - 1]).total_cmp(&(values[b] - values[b - 1])))
        .unwrap_or(min);
    let spectral_rows: Vec<Vec<f32>> = (0..n)
        .map(|i| (0..k).map(|j| vectors[i * n + j] as f32).collect())
        .collect();
    kmeans(&spectral_rows, k)
}

/// Lloyd's k-means from a few deterministic k-means++ starts; the tightest result wins.
fn kmeans(points: &[Vec<f32>], k: usize) -> Vec<usize> {
    const RESTARTS: u64 = 8;
    const ITERATIONS: usize = 100;
    let distance =
        |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>();
    let mut best: Option<(f32, Vec<usize>)> = None;
    for seed in 0..RESTARTS {
        let mut random = Lcg(seed * 7919 + 17);
        let mut centres = vec![points[random.below(points.len())].clone()];
        while centres.len() < k {
            let weights: Vec<f32> = points
                .iter()
                .map(|p| {
                    centres
                        .iter()
                        .map(|c| distance(p, c))
                        .fold(f32::MAX, f32::min)
                })
                .collect();
            let total: f32 = weights.iter().sum();
            let mut target = random.unit() * total;
            let chosen = weights
                .iter()
                .position(|&w| {
                    target -= w;
                    target <= 0.0
                })
                .unwrap_or(points.len() - 1);
            centres.push(points[chosen].clone());
        }
        let mut labels = vec![0; points.len()];
        for _ in 0..ITERATIONS {
            let next: Vec<usize> = points
                .iter()
                .map(|p| {
                    (0..k)
                        .min_by(|&a, &b| {
                            distance(p, &centres[a]).total_cmp(&distance(p, &centres[b]))
                        })
                        .unwrap_or(0)
                })
                .collect();
            let settled = next == labels;
            labels = next;
            for (c, centre) in centres.iter_mut().enumerate() {
                let members: Vec<&Vec<f32>> = points
                    .iter()
                    .zip(&labels)
                    .filter(|(_, &l)| l == c)
                    .map(|(p, _)| p)
                    .collect();
                if !members.is_empty() {
                    for (d, v) in centre.iter_mut().enumerate() {
                        *v = members.iter().map(|m| m[d]).sum::<f32>() / members.len() as f32;
                    }
                }
            }
            if settled {
                break;
            }
        }
        let inertia: f32 = points
            .iter()
            .zip(&labels)
            .map(|(p, &l)| distance(p, &centres[l]))
            .sum();
        if best.as_ref().is_none_or(|(b, _)| inertia < *b) {
            best = Some((inertia, labels));
        }
    }
    best.map(|(_, labels)| labels).unwrap_or_default()
}

/// A small deterministic generator: clustering must give the same answer on every run.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f32) as usize).min(n - 1)
    }
}

/// The mean embedding of each label present, as (label, centroid).
fn centroids(unit: &[Vec<f32>], labels: &[usize]) -> Vec<(usize, Vec<f32>)> {
    let mut present: Vec<usize> = labels.to_vec();
    present.sort_unstable();
    present.dedup();
    present
        .into_iter()
        .map(|label| {
            let mut sum = vec![0.0f32; unit[0].len()];
            for (e, _) in unit.iter().zip(labels).filter(|(_, &l)| l == label) {
                sum.iter_mut().zip(e).for_each(|(s, v)| *s += v);
            }
            (label, sum)
        })
        .collect()
}

fn assign_to_nearest(unit: &[Vec<f32>], centres: &[(usize, Vec<f32>)]) -> Vec<usize> {
    unit.iter()
        .map(|e| {
            centres
                .iter()
                .max_by(|a, b| cosine(e, &a.1).total_cmp(&cosine(e, &b.1)))
                .map_or(0, |(label, _)| *label)
        })
        .collect()
}

fn absorb_small_clusters(unit: &[Vec<f32>], labels: Vec<usize>, min_speakers: usize) -> Vec<usize> {
    let all = centroids(unit, &labels);
    let size = |label: usize| labels.iter().filter(|&&l| l == label).count();
    let (major, minor): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|(label, _)| size(*label) >= MIN_CLUSTER_SIZE);
    if minor.is_empty() || major.is_empty() || major.len() < min_speakers {
        return labels;
    }
    let minor: Vec<usize> = minor.into_iter().map(|(label, _)| label).collect();
    let nearest = assign_to_nearest(unit, &major);
    labels
        .into_iter()
        .zip(nearest)
        .map(|(label, near)| if minor.contains(&label) { near } else { label })
        .collect()
}

fn merge_similar_clusters(
    unit: &[Vec<f32>],
    mut labels: Vec<usize>,
    min_speakers: usize,
    sensitivity: Sensitivity,
) -> Vec<usize> {
    loop {
        let centres = centroids(unit, &labels);
        if centres.len() <= min_speakers.max(1) {
            return labels;
        }
        let mut closest: Option<(f32, usize, usize)> = None;
        for (i, (a, ca)) in centres.iter().enumerate() {
            for (b, cb) in &centres[i + 1..] {
                let similarity = cosine(ca, cb);
                if closest.is_none_or(|(s, _, _)| similarity > s) {
                    closest = Some((similarity, *a, *b));
                }
            }
        }
        match closest {
            Some((similarity, keep, gone)) if similarity >= sensitivity.merge_cosine() => {
                labels
                    .iter_mut()
                    .filter(|l| **l == gone)
                    .for_each(|l| *l = keep);
            }
            _ => return labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitivity_decides_whether_two_similar_voices_stay_apart() {
        // Two tight groups whose centres are at a cosine of 0.8: one voice split in two for a
        // low sensitivity, two voices for a high one.
        let a = [1.0f32, 0.0];
        let b = [0.8f32, 0.6];
        let unit: Vec<Vec<f32>> = (0..10)
            .map(|i| if i < 5 { a.to_vec() } else { b.to_vec() })
            .collect();
        let labels: Vec<usize> = (0..10).map(|i| usize::from(i >= 5)).collect();
        let speakers = |s: f64| {
            let merged =
                merge_similar_clusters(&unit, labels.clone(), 1, Sensitivity::new(s).unwrap());
            merged
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert_eq!(speakers(0.0), 1);
        assert_eq!(speakers(0.5), 1);
        assert_eq!(speakers(1.0), 2);
        assert!(Sensitivity::new(1.5).is_none());
    }

    /// Noisy points around `voices` orthogonal directions, `per_voice` each, interleaved.
    fn voices(voices: usize, per_voice: usize) -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut random = Lcg(99);
        let mut points = Vec::new();
        let mut truth = Vec::new();
        for i in 0..voices * per_voice {
            let voice = i % voices;
            let point: Vec<f32> = (0..16)
                .map(|d| if d == voice { 1.0 } else { 0.0 } + 0.25 * (random.unit() - 0.5))
                .collect();
            points.push(point);
            truth.push(voice);
        }
        (points, truth)
    }

    /// True when the labels split the points exactly as the truth does (up to renaming).
    fn same_partition(labels: &[usize], truth: &[usize]) -> bool {
        (0..labels.len())
            .all(|i| (0..labels.len()).all(|j| (labels[i] == labels[j]) == (truth[i] == truth[j])))
    }

    #[test]
    fn finds_the_number_of_voices_by_itself() {
        for count in [1, 2, 3, 4] {
            let (points, truth) = voices(count, 20);
            let labels = cluster(&points, SpeakerConstraint::default(), Sensitivity::DEFAULT);
            assert!(
                same_partition(&labels, &truth),
                "{count} voices: {labels:?}"
            );
        }
    }

    #[test]
    fn too_few_windows_are_one_voice_whatever_they_say_unless_more_are_demanded() {
        // The diarizer skips the network when compares_windows says the embeddings go unread:
        // the clustering must then call them one voice however different they are.
        let (few, _) = voices(3, 3);
        assert!(!compares_windows(few.len(), SpeakerConstraint::default()));
        assert_eq!(
            cluster(&few, SpeakerConstraint::default(), Sensitivity::DEFAULT),
            vec![0; 9]
        );
        let empty = vec![Vec::new(); few.len()];
        assert_eq!(
            cluster(&empty, SpeakerConstraint::default(), Sensitivity::DEFAULT),
            vec![0; 9]
        );

        let three = SpeakerConstraint::exactly(3).unwrap();
        assert!(compares_windows(few.len(), three));
        let (_, truth) = voices(3, 3);
        assert!(same_partition(
            &cluster(&few, three, Sensitivity::DEFAULT),
            &truth
        ));

        let (enough, truth) = voices(2, 5);
        assert!(compares_windows(enough.len(), SpeakerConstraint::default()));
        assert!(same_partition(
            &cluster(&enough, SpeakerConstraint::default(), Sensitivity::DEFAULT),
            &truth
        ));
        assert!(!compares_windows(0, three));
    }

    #[test]
    fn honours_an_exact_count() {
        let (points, _) = voices(3, 20);
        let labels = cluster(
            &points,
            SpeakerConstraint::exactly(2).unwrap(),
            Sensitivity::DEFAULT,
        );
        let mut distinct = labels.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 2);
    }

    #[test]
    fn large_inputs_are_clustered_through_a_sample() {
        let (points, truth) = voices(3, 300);
        let labels = cluster(&points, SpeakerConstraint::default(), Sensitivity::DEFAULT);
        assert!(same_partition(&labels, &truth));
    }
}
