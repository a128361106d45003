//! Grouping unit vectors by meaning: a coarse k-means split into cells of a few thousand posts,
//! density-based grouping inside each cell (DBSCAN with exact cosines: a post with enough close
//! neighbours is a core, cores that are neighbours share a group, a post next to a core joins it),
//! then groups from different cells whose centres are close are merged.
//!
//! Why this shape: chatter about many subjects is thin everywhere (few close neighbours), while a
//! new problem that many people describe is a dense patch, so density, not a fixed number of
//! clusters, is what tells them apart. Exact pairwise cosines cost n² / 2 dot products; the cells
//! keep that to n × cell size, so 100,000 posts take seconds, and a dense patch split between two
//! cells is joined again by the merge.

use rayon::prelude::*;

/// Vectors of one dimension, row after row.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    dims: usize,
    data: Vec<f32>,
}

impl Vectors {
    pub fn new(dims: usize) -> Self {
        Vectors { dims, data: Vec::new() }
    }

    /// Adds `v` (must have `dims` values).
    pub fn push(&mut self, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dims);
        self.data.extend_from_slice(v);
    }

    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dims).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dims..(i + 1) * self.dims]
    }

    /// Mean of every row.
    pub fn mean(&self) -> Vec<f32> {
        let mut sum = vec![0f32; self.dims];
        for i in 0..self.len() {
            sum.iter_mut().zip(self.row(i)).for_each(|(s, x)| *s += x);
        }
        let n = self.len().max(1) as f32;
        sum.into_iter().map(|s| s / n).collect()
    }

    /// Every row minus `center` and minus its part along each of `components` (unit length,
    /// orthogonal), back to unit length. The encoder's embeddings all sit in a narrow cone; without
    /// centring, unrelated posts have cosines of 0.8 and nothing stands out.
    pub fn projected(&self, center: &[f32], components: &[Vec<f32>]) -> Vectors {
        let mut out = Vectors::new(self.dims);
        let mut row = vec![0f32; self.dims];
        for i in 0..self.len() {
            row.iter_mut().zip(self.row(i)).zip(center).for_each(|((r, x), c)| *r = x - c);
            for p in components {
                let along = dot(&row, p);
                row.iter_mut().zip(p).for_each(|(r, q)| *r -= along * q);
            }
            normalise(&mut row);
            out.push(&row);
        }
        out
    }

    /// Every row minus `center`, not normalised (for [`top_components`]).
    pub fn shifted(&self, center: &[f32]) -> Vectors {
        let mut out = Vectors::new(self.dims);
        let mut row = vec![0f32; self.dims];
        for i in 0..self.len() {
            row.iter_mut().zip(self.row(i)).zip(center).for_each(|((r, x), c)| *r = x - c);
            out.push(&row);
        }
        out
    }
}

/// The `k` directions along which the rows vary most (principal components of rows already
/// centred), by power iteration with each direction kept orthogonal to the ones before.
pub fn top_components(v: &Vectors, k: usize, iterations: usize) -> Vec<Vec<f32>> {
    let mut found: Vec<Vec<f32>> = Vec::new();
    if v.is_empty() {
        return found;
    }
    for c in 0..k.min(v.dims()) {
        // A fixed start that is not orthogonal to anything in particular.
        let mut u: Vec<f32> = (0..v.dims()).map(|i| if (i + c) % 3 == 0 { 1.0 } else { 0.5 }).collect();
        normalise(&mut u);
        for _ in 0..iterations {
            let mut next = vec![0f32; v.dims()];
            for i in 0..v.len() {
                let row = v.row(i);
                let along = dot(row, &u);
                next.iter_mut().zip(row).for_each(|(n, x)| *n += along * x);
            }
            for p in &found {
                let along = dot(&next, p);
                next.iter_mut().zip(p).for_each(|(n, q)| *n -= along * q);
            }
            normalise(&mut next);
            u = next;
        }
        found.push(u);
    }
    found
}

/// Scales `v` to unit length (zero stays zero).
pub fn normalise(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product in eight lanes, so the compiler vectorises it (a plain `sum()` of f32 may not be
/// reordered, and runs one multiply-add at a time).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// How posts are grouped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Cosine at which two posts are neighbours.
    pub neighbour_cosine: f32,
    /// Neighbours that make a post a core.
    pub min_neighbours: usize,
    /// Posts per k-means cell (the cost of a cell is its size squared).
    pub cell_posts: usize,
}

/// Groups of row indices (each group at least one core and its neighbours), largest first.
/// Rows in no group are left out: that is most chatter.
pub fn groups(v: &Vectors, p: &Params) -> Vec<Vec<usize>> {
    let cells = cells(v, p.cell_posts.max(2));
    let found: Vec<(usize, Vec<usize>)> = cells
        .par_iter()
        .enumerate()
        .flat_map_iter(|(c, cell)| dense_groups(v, cell, p).into_iter().map(move |g| (c, g)))
        .collect();
    let mut found = if cells.len() > 1 {
        merge_close(v, found, p.neighbour_cosine)
    } else {
        found.into_iter().map(|(_, g)| g).collect()
    };
    found.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    found
}

/// Splits the rows into about `n / cell_posts` cells by a few rounds of k-means (spherical: the
/// centre of a cell is its normalised mean). One cell when everything fits.
fn cells(v: &Vectors, cell_posts: usize) -> Vec<Vec<usize>> {
    let n = v.len();
    if n <= cell_posts {
        return vec![(0..n).collect()];
    }
    let k = n.div_ceil(cell_posts);
    // Evenly spaced rows as the first centres: deterministic, and the input order (time) is
    // unrelated to meaning.
    let mut centres: Vec<Vec<f32>> = (0..k).map(|c| v.row(c * n / k).to_vec()).collect();
    let mut assign = vec![0usize; n];
    for _round in 0..6 {
        assign.par_iter_mut().enumerate().for_each(|(i, a)| {
            let row = v.row(i);
            *a = (0..k).max_by(|&x, &y| dot(row, &centres[x]).total_cmp(&dot(row, &centres[y]))).unwrap_or(0);
        });
        let mut sums = vec![vec![0f32; v.dims()]; k];
        for (i, &a) in assign.iter().enumerate() {
            sums[a].iter_mut().zip(v.row(i)).for_each(|(s, x)| *s += x);
        }
        for (c, mut s) in sums.into_iter().enumerate() {
            normalise(&mut s);
            if s.iter().any(|x| *x != 0.0) {
                centres[c] = s;
            }
        }
    }
    let mut out = vec![Vec::new(); k];
    for (i, &a) in assign.iter().enumerate() {
        out[a].push(i);
    }
    out.retain(|c| !c.is_empty());
    out
}

/// DBSCAN inside one cell with exact cosines.
fn dense_groups(v: &Vectors, cell: &[usize], p: &Params) -> Vec<Vec<usize>> {
    let m = cell.len();
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); m];
    for a in 0..m {
        let row = v.row(cell[a]);
        for b in a + 1..m {
            if dot(row, v.row(cell[b])) >= p.neighbour_cosine {
                neighbours[a].push(b as u32);
                neighbours[b].push(a as u32);
            }
        }
    }
    let core: Vec<bool> = neighbours.iter().map(|n| n.len() >= p.min_neighbours).collect();
    let mut sets = UnionFind::new(m);
    for a in (0..m).filter(|&a| core[a]) {
        for &b in neighbours[a].iter().filter(|&&b| core[b as usize]) {
            sets.union(a, b as usize);
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for a in 0..m {
        // A border post joins the group of its first core neighbour.
        let anchor = if core[a] { Some(a) } else { neighbours[a].iter().map(|&b| b as usize).find(|&b| core[b]) };
        if let Some(c) = anchor {
            by_root.entry(sets.find(c)).or_default().push(cell[a]);
        }
    }
    by_root.into_values().collect()
}

/// Joins groups of different cells whose centres are close (a dense patch cut by a cell border);
/// groups of one cell were told apart by density already and stay apart. A centre is an average,
/// so two centres are closer than two posts of the same groups would be: they must be within
/// halfway from the posts' threshold `cosine` to 1 (0.725 for 0.45).
fn merge_close(v: &Vectors, found: Vec<(usize, Vec<usize>)>, cosine: f32) -> Vec<Vec<usize>> {
    let cosine = (1.0 + cosine) / 2.0;
    let centres: Vec<Vec<f32>> = found.iter().map(|(_, g)| centre_of(v, g)).collect();
    let mut sets = UnionFind::new(found.len());
    for a in 0..found.len() {
        for b in a + 1..found.len() {
            if found[a].0 != found[b].0 && dot(&centres[a], &centres[b]) >= cosine {
                sets.union(a, b);
            }
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, (_, g)) in found.into_iter().enumerate() {
        by_root.entry(sets.find(i)).or_default().extend(g);
    }
    by_root
        .into_values()
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect()
}

/// The normalised mean of `rows`.
pub fn centre_of(v: &Vectors, rows: &[usize]) -> Vec<f32> {
    let mut sum = vec![0f32; v.dims()];
    for &i in rows {
        sum.iter_mut().zip(v.row(i)).for_each(|(s, x)| *s += x);
    }
    normalise(&mut sum);
    sum
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind { parent: (0..n).collect() }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random generator (tests only need spread, not quality).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        }
        fn unit(&mut self, dims: usize) -> Vec<f32> {
            let mut v: Vec<f32> = (0..dims).map(|_| self.next()).collect();
            normalise(&mut v);
            v
        }
    }

    /// `spread` random directions, plus `dense` posts near one direction (cosine ~0.8 to it).
    fn scene(spread: usize, dense: usize, dims: usize, seed: u64) -> (Vectors, Vec<usize>) {
        let mut rng = Lcg(seed);
        let mut v = Vectors::new(dims);
        let topic = rng.unit(dims);
        let mut members = Vec::new();
        for i in 0..spread + dense {
            if i % ((spread + dense) / dense.max(1)).max(1) == 0 && members.len() < dense {
                let noise = rng.unit(dims);
                let mut x: Vec<f32> = topic.iter().zip(&noise).map(|(t, n)| 0.8 * t + 0.6 * n).collect();
                normalise(&mut x);
                members.push(v.len());
                v.push(&x);
            } else {
                v.push(&rng.unit(dims));
            }
        }
        (v, members)
    }

    const P: Params = Params { neighbour_cosine: 0.5, min_neighbours: 4, cell_posts: 2000 };

    #[test]
    fn a_dense_patch_is_one_group_and_spread_posts_are_none() {
        let (v, members) = scene(400, 30, 384, 7);
        let g = groups(&v, &P);
        assert_eq!(g.len(), 1, "{:?}", g.iter().map(Vec::len).collect::<Vec<_>>());
        assert_eq!(g[0], members);
    }

    #[test]
    fn only_spread_posts_make_no_group() {
        let (v, _) = scene(600, 0, 384, 11);
        assert!(groups(&v, &P).is_empty());
    }

    #[test]
    fn a_patch_cut_by_small_cells_is_merged_back() {
        let (v, members) = scene(900, 60, 384, 3);
        let small = Params { cell_posts: 100, ..P };
        let g = groups(&v, &small);
        assert!(!g.is_empty());
        let covered = g[0].iter().filter(|i| members.contains(i)).count();
        assert!(covered >= members.len() * 9 / 10, "{covered} of {} in the largest group", members.len());
        assert!(g[0].len() <= members.len() + 2, "{} posts in the group", g[0].len());
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        let mut rng = Lcg(5);
        for len in [0, 1, 7, 8, 9, 384] {
            let (a, b): (Vec<f32>, Vec<f32>) = (0..len).map(|_| (rng.next(), rng.next())).unzip();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-5, "len {len}");
        }
    }

    #[test]
    fn the_top_component_is_the_direction_of_most_spread() {
        let mut rng = Lcg(9);
        let mut v = Vectors::new(16);
        for i in 0..200 {
            let mut x: Vec<f32> = (0..16).map(|_| 0.1 * rng.next()).collect();
            x[3] += if i % 2 == 0 { 1.0 } else { -1.0 };
            v.push(&x);
        }
        let pcs = top_components(&v, 2, 30);
        assert!(pcs[0][3].abs() > 0.99, "{:?}", pcs[0]);
        assert!(dot(&pcs[0], &pcs[1]).abs() < 1e-3, "orthogonal");
        let flat = v.projected(&[0.0; 16], &pcs[..1]);
        assert!((0..flat.len()).all(|i| flat.row(i)[3].abs() < 0.2), "the spread direction is gone");
    }

    #[test]
    fn centring_removes_the_shared_direction() {
        let mut v = Vectors::new(3);
        v.push(&[0.9, 0.1, 0.0]);
        v.push(&[0.9, -0.1, 0.0]);
        let c = v.projected(&v.mean(), &[]);
        assert!(dot(c.row(0), c.row(1)) < -0.99, "opposite once the shared part is gone");
    }
}
