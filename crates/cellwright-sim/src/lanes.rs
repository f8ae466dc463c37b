//! The stochastic integration, sixteen cells at a time.
//!
//! Each block of [`LANES`] cells is integrated together: every level is a `[f32; LANES]`, and
//! every step is straight-line arithmetic over those arrays, which the compiler turns into
//! vector instructions. The kernel is compiled for AVX-512, AVX2 and the x86-64 baseline and
//! picked at run time; it uses only correctly rounded operations (add, multiply, divide,
//! square root, bit manipulation) and never fuses a multiply with an add, so every version
//! gives the same bits.
//!
//! Per cell and step the costs are the activity `q = 1 / (1 + 2^(n (log2 k − log2 p)))` of every
//! regulator, the production diagram ([`Program`]) and two normal draws per node. `log2` and
//! `exp2` are polynomials (relative error below 3e-7, within a few units of f32 rounding);
//! the normals come from Box–Muller on xoshiro128++ with the angle's sine and cosine as
//! polynomials (error below 1e-7).

use cellwright_core::CancelToken;

use crate::model::{OdeModel, Program};

/// Cells integrated together: one AVX-512 register of f32.
pub(crate) const LANES: usize = 16;

pub(crate) type Lane = [f32; LANES];

/// xoshiro128++ (Blackman and Vigna), one generator per lane.
#[derive(Debug, Clone)]
pub(crate) struct LaneRng {
    s: [[u32; LANES]; 4],
}

impl LaneRng {
    /// Each lane's state from its own seed; an all-zero state (which would stay zero) is
    /// replaced by a fixed one.
    pub(crate) fn new(seeds: [[u32; 4]; LANES]) -> Self {
        let mut s = [[0; LANES]; 4];
        for (l, seed) in seeds.iter().enumerate() {
            let seed = if *seed == [0; 4] { [1, 0, 0, 0] } else { *seed };
            for (w, v) in s.iter_mut().zip(seed) {
                w[l] = v;
            }
        }
        Self { s }
    }

    #[inline(always)]
    pub(crate) fn next(&mut self) -> [u32; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0; LANES];
        for l in 0..LANES {
            out[l] = s0[l].wrapping_add(s3[l]).rotate_left(7).wrapping_add(s0[l]);
            let t = s1[l] << 9;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(11);
        }
        out
    }

    /// Two independent standard normals per lane (Box–Muller). The radius uses 24 random
    /// bits, so draws stop at ±5.77 (a 1-in-10^8 tail).
    #[inline(always)]
    pub(crate) fn normals(&mut self) -> (Lane, Lane) {
        let (a, b) = (self.next(), self.next());
        let (mut z1, mut z2) = ([0.0; LANES], [0.0; LANES]);
        for l in 0..LANES {
            // u in (0, 1]: never 0, so its log is finite.
            let u = ((a[l] >> 8) as i32 + 1) as f32 * TWO_TO_MINUS_24;
            let r = (-2.0 * std::f32::consts::LN_2 * log2(u)).sqrt();
            // The angle: a quadrant from the top two bits, a fraction of it from the next 24.
            let quadrant = b[l] >> 30;
            let phi = ((b[l] >> 6) & 0xff_ffff) as i32 as f32 * TWO_TO_MINUS_24;
            let (s, c) = quarter_sin_cos(phi);
            // (cos θ, sin θ) for θ = (quadrant + φ) π/2: swap on odd quadrants, then signs.
            let odd = quadrant & 1 == 1;
            let (cos, sin) = if odd { (s, c) } else { (c, s) };
            let cos_sign = ((quadrant + 1) >> 1 & 1) << 31;
            let sin_sign = (quadrant >> 1) << 31;
            z1[l] = r * f32::from_bits(cos.to_bits() ^ cos_sign);
            z2[l] = r * f32::from_bits(sin.to_bits() ^ sin_sign);
        }
        (z1, z2)
    }
}

const TWO_TO_MINUS_24: f32 = 1.0 / 16_777_216.0;

/// `log2 x` for positive, normal `x`: the exponent, plus a polynomial in `m − 1` for the
/// mantissa `m` in [√½, √2).
// Coefficients fitted (minimax) for this range, written as fitted; near a known constant
// only by the fit.
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
pub(crate) fn log2(x: f32) -> f32 {
    const P: [f32; 8] = [
        1.442_695_0,
        -0.721_352_5,
        0.480_931_12,
        -0.360_263_65,
        0.286_870_1,
        -0.248_321_41,
        0.235_699_34,
        -0.149_725_77,
    ];
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x7f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = m - 1.0;
    let mut poly = P[7];
    for &c in P[..7].iter().rev() {
        poly = poly * t + c;
    }
    e as f32 + t * poly
}

/// `2^x`, for `x` in [−100, 100]: an integer power of two from the bits and a polynomial for
/// the rest, in [−½, ½].
// Coefficients fitted (minimax) for this range, written as fitted; near a known constant
// only by the fit.
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
pub(crate) fn exp2(x: f32) -> f32 {
    const P: [f32; 7] = [
        1.0,
        0.693_147_2,
        0.240_226_52,
        0.055_503_27,
        0.009_617_995,
        0.001_340_041,
        0.000_154_780_03,
    ];
    // Round to the nearest integer by adding 1.5 · 2^23: the sum's low mantissa bits are
    // then the integer, in two's complement.
    const ROUND: f32 = 12_582_912.0;
    let big = x + ROUND;
    let f = x - (big - ROUND);
    let mut poly = P[6];
    for &c in P[..6].iter().rev() {
        poly = poly * f + c;
    }
    let exponent = big
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127);
    poly * f32::from_bits(exponent << 23)
}

/// `sin(φ π/2)` and `cos(φ π/2)` for `φ` in [0, 1].
// Coefficients fitted (minimax) for this range, written as fitted; near a known constant
// only by the fit.
#[allow(clippy::excessive_precision, clippy::approx_constant)]
#[inline(always)]
fn quarter_sin_cos(phi: f32) -> (f32, f32) {
    const S: [f32; 5] = [
        1.570_796_3,
        -0.645_963_36,
        0.079_688_48,
        -0.004_672_230_5,
        0.000_150_821_83,
    ];
    const C: [f32; 6] = [
        1.0,
        -1.233_700_5,
        0.253_669_32,
        -0.020_862_689,
        0.000_917_725_2,
        -0.000_023_825_067,
    ];
    let z = phi * phi;
    let mut s = S[4];
    for &c in S[..4].iter().rev() {
        s = s * z + c;
    }
    let mut c = C[5];
    for &k in C[..5].iter().rev() {
        c = c * z + k;
    }
    (phi * s, c)
}

/// The per-node rates of one model in single precision, and the step.
#[derive(Debug, Clone)]
pub(crate) struct Kernel<'a> {
    program: &'a Program,
    mrna_degradation: Vec<f32>,
    translation: Vec<f32>,
    protein_degradation: Vec<f32>,
    hill: Vec<f32>,
    log2_threshold: Vec<f32>,
    dt: f32,
    /// `σ √dt`.
    noise: f32,
}

/// The cells of one block: their levels, what their perturbations make of each node, and
/// their random streams.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Per node.
    pub(crate) x: Vec<Lane>,
    pub(crate) p: Vec<Lane>,
    /// `m_i` of each cell (0 where knocked out).
    pub(crate) transcription: Vec<Lane>,
    /// Whether each cell holds the node's production at 1 (overexpression).
    pub(crate) forced_on: Vec<[bool; LANES]>,
    pub(crate) rng: LaneRng,
    /// The step after which each cell is recorded.
    pub(crate) shown: [usize; LANES],
}

impl<'a> Kernel<'a> {
    pub(crate) fn new(model: &'a OdeModel, dt: f64, sigma: f64) -> Self {
        let single = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
        Self {
            program: &model.program,
            mrna_degradation: single(&model.mrna_degradation),
            translation: single(&model.translation),
            protein_degradation: single(&model.protein_degradation),
            hill: single(&model.hill),
            log2_threshold: model.threshold.iter().map(|&k| k.log2() as f32).collect(),
            dt: dt as f32,
            noise: (sigma * dt.sqrt()) as f32,
        }
    }

    /// Integrates `block` until its last cell is shown, writing each cell's mRNA levels into
    /// its row of `out` (cells × nodes) at its step. False if cancelled.
    pub(crate) fn integrate(
        &self,
        block: &mut Block,
        out: &mut [f32],
        cancel: &CancelToken,
    ) -> bool {
        integrate(self, block, out, cancel)
    }
}

/// `q = 1 / (1 + 2^(n (log2 k − log2 p)))`, 0 where `p` is 0; the exponent is clamped to
/// ±100, where `q` is 1 or 0 to within 1e-30.
#[inline(always)]
fn activity(p: Lane, hill: f32, log2k: f32) -> Lane {
    let mut q = [0.0; LANES];
    for l in 0..LANES {
        let u = hill * (log2k - log2(p[l]));
        let u = if u > 100.0 { 100.0 } else { u };
        let u = if u < -100.0 { -100.0 } else { u };
        let a = 1.0 / (1.0 + exp2(u));
        q[l] = if p[l] > 0.0 { a } else { 0.0 };
    }
    q
}

/// A diagram branch: `lo + (hi − lo) q`.
#[inline(always)]
fn mix(lo: Lane, hi: Lane, q: Lane) -> Lane {
    let mut v = [0.0; LANES];
    for l in 0..LANES {
        v[l] = lo[l] + (hi[l] - lo[l]) * q[l];
    }
    v
}

/// One Euler–Maruyama step of a node's mRNA and protein, given its production `f`, its
/// transcription rate per cell, its other rates and two normal draws per cell.
#[inline(always)]
fn euler(
    k: &Kernel,
    (x, p): (Lane, Lane),
    f: Lane,
    m: Lane,
    (lx, r, lp): (f32, f32, f32),
    (zx, zp): (Lane, Lane),
) -> (Lane, Lane) {
    let (mut x1, mut p1) = ([0.0; LANES], [0.0; LANES]);
    for l in 0..LANES {
        let dx = m[l] * f[l] - lx * x[l];
        let dp = r * x[l] - lp * p[l];
        let nx = x[l] + dx * k.dt + k.noise * x[l].sqrt() * zx[l];
        let np = p[l] + dp * k.dt + k.noise * p[l].sqrt() * zp[l];
        // BoolODE's guard: a step that would go negative leaves the level as it was.
        x1[l] = if nx >= 0.0 { nx } else { x[l] };
        p1[l] = if np >= 0.0 { np } else { p[l] };
    }
    (x1, p1)
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1",
))]
fn integrate(k: &Kernel, block: &mut Block, out: &mut [f32], cancel: &CancelToken) -> bool {
    integrate_lanes(k, block, out, cancel)
}

/// The kernel's body, inlined into each build of [`integrate`] (and called as it is by the
/// test that the builds agree).
#[inline(always)]
fn integrate_lanes(k: &Kernel, block: &mut Block, out: &mut [f32], cancel: &CancelToken) -> bool {
    let n = block.x.len();
    let program = k.program;
    let mut q = vec![[0.0f32; LANES]; n];
    let mut values = vec![[0.0f32; LANES]; program.branches.len() + 2];
    values[1] = [1.0; LANES];
    // Cells in the order they are shown.
    let mut order: [usize; LANES] = std::array::from_fn(|l| l);
    order.sort_by_key(|&l| block.shown[l]);
    let mut next = 0;
    let last = block.shown[order[LANES - 1]];
    for step in 1..=last {
        if step % 1024 == 0 && cancel.is_cancelled() {
            return false;
        }
        // Lanes pass by value: copies in registers, which the compiler can vectorise
        // without proving that the buffers do not overlap.
        for &j in &program.read {
            q[j] = activity(block.p[j], k.hill[j], k.log2_threshold[j]);
        }
        for (b, branch) in program.branches.iter().enumerate() {
            let (lo, hi) = (values[branch.lo as usize], values[branch.hi as usize]);
            values[b + 2] = mix(lo, hi, q[branch.var as usize]);
        }
        for i in 0..n {
            let noise = block.rng.normals();
            let rates = (
                k.mrna_degradation[i],
                k.translation[i],
                k.protein_degradation[i],
            );
            let mut f = values[program.roots[i] as usize];
            for (f, &forced) in f.iter_mut().zip(&block.forced_on[i]) {
                *f = if forced { 1.0 } else { *f };
            }
            let (x, p) = (block.x[i], block.p[i]);
            (block.x[i], block.p[i]) = euler(k, (x, p), f, block.transcription[i], rates, noise);
        }
        while next < LANES && block.shown[order[next]] == step {
            let l = order[next];
            for (i, x) in block.x.iter().enumerate() {
                out[l * n + i] = x[l];
            }
            next += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwright_data::boolean::BooleanNetwork;

    #[test]
    fn the_vector_builds_give_the_bits_of_the_baseline_build() {
        let text = "A, !C | B\nB, A & !D\nC, B | (A & D)\nD, !A\nE, (A & B) | (C & !D)\n";
        let net = BooleanNetwork::parse_bnet(text, "t.bnet").unwrap();
        let model = OdeModel::new(&net, &crate::Kinetics::default(), 3).unwrap();
        let kernel = Kernel::new(&model, 0.01, 1.0);
        let n = model.len();
        let lane = |f: &dyn Fn(usize, usize) -> f32| -> Vec<Lane> {
            (0..n).map(|i| std::array::from_fn(|l| f(i, l))).collect()
        };
        let block = Block {
            x: lane(&|i, l| ((i * 5 + l) % 7) as f32 * 0.3),
            p: lane(&|i, l| ((i * 3 + l) % 11) as f32 * 2.0),
            transcription: lane(&|i, l| if (i + l) % 9 == 0 { 0.0 } else { 20.0 }),
            forced_on: (0..n)
                .map(|i| std::array::from_fn(|l| (i + 2 * l) % 13 == 0))
                .collect(),
            rng: LaneRng::new(std::array::from_fn(|l| [l as u32, 7, 1, 2])),
            shown: std::array::from_fn(|l| 300 + 37 * l),
        };
        let cancel = CancelToken::new();
        let (mut dispatched, mut baseline) = (block.clone(), block);
        let (mut a, mut b) = (vec![0.0; LANES * n], vec![0.0; LANES * n]);
        assert!(kernel.integrate(&mut dispatched, &mut a, &cancel));
        assert!(integrate_lanes(&kernel, &mut baseline, &mut b, &cancel));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b));
        assert!(a.iter().all(|x| x.is_finite() && *x >= 0.0));
        assert!(a.iter().any(|&x| x > 0.5));
    }

    #[test]
    fn log2_and_exp2_are_within_a_few_ulps() {
        let mut worst: f32 = 0.0;
        for i in 0..200_000 {
            let x = 1e-6f32 * (1.0001f32).powi(i);
            let err = (log2(x) - x.log2()).abs() / x.log2().abs().max(1.0);
            worst = worst.max(err);
        }
        assert!(worst < 3e-7, "log2: {worst}");
        let mut worst: f32 = 0.0;
        for i in -100_000..=100_000 {
            let x = i as f32 * 1e-3;
            worst = worst.max((exp2(x) / x.exp2() - 1.0).abs());
        }
        assert!(worst < 3e-7, "exp2: {worst}");
    }

    #[test]
    fn lanes_follow_the_xoshiro128plusplus_reference() {
        // The reference's first outputs for state [1, 2, 3, 4].
        let mut rng = LaneRng::new([[1, 2, 3, 4]; LANES]);
        let mut reference = [1u32, 2, 3, 4];
        for _ in 0..100 {
            let got = rng.next();
            let s = &mut reference;
            let want = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
            let t = s[1] << 9;
            s[2] ^= s[0];
            s[3] ^= s[1];
            s[1] ^= s[2];
            s[0] ^= s[3];
            s[2] ^= t;
            s[3] = s[3].rotate_left(11);
            assert!(got.iter().all(|&g| g == want));
        }
    }

    #[test]
    fn normals_have_the_moments_of_a_standard_normal() {
        let seeds = std::array::from_fn(|l| [l as u32 * 7 + 1, 99, l as u32, 5]);
        let mut rng = LaneRng::new(seeds);
        let (mut n, mut sum, mut sq, mut quad, mut cross, mut beyond2) =
            (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..20_000 {
            let (a, b) = rng.normals();
            for l in 0..LANES {
                let (a, b) = (f64::from(a[l]), f64::from(b[l]));
                for z in [a, b] {
                    n += 1.0;
                    sum += z;
                    sq += z * z;
                    quad += z.powi(4);
                    beyond2 += f64::from(u8::from(z.abs() > 2.0));
                }
                cross += a * b;
            }
        }
        let pairs = n / 2.0;
        let (mean, var) = (sum / n, sq / n);
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
        assert!((quad / n - 3.0).abs() < 0.05, "fourth moment {}", quad / n);
        assert!(
            (cross / pairs).abs() < 0.01,
            "pair correlation {}",
            cross / pairs
        );
        // P(|z| > 2) = 0.0455.
        assert!((beyond2 / n - 0.0455).abs() < 0.002, "{}", beyond2 / n);
    }
}
