// Parameter updates and the learning-rate schedule.
//   SGD with momentum:  v = mu v + (g + wd p);        p -= lr v
//   Adam:               g' = g + wd p (L2);  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2
//                       p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//   AdamW:              as Adam on g, then p -= lr * wd * p (decoupled decay, Loshchilov & Hutter)
//   LAMB:               u = AdamW's step (m-hat / (sqrt(v-hat) + eps) + wd p), per tensor p -= lr (||p|| / ||u||) u
//                       (You et al., ICLR 2020): every tensor moves by lr times its own norm, so a tensor of tiny
//                       weights (a BatchNorm-folded conv before a large scale) is not moved by Adam's unit steps
// Weight decay applies only to parameters that say so (weights, not biases, slopes or codebooks).
// Global-norm clipping scales every gradient by min(1, clip / ||g||) before the update.
// Schedule: linear warm-up over the first W steps, then constant, cosine to 0 at the last step, or a step
// decay (x gamma at each given fraction of the steps).
namespace OnnxOpt.Training;

public sealed class ParameterOptimizer
{
    private readonly TrainSettings _s;
    private readonly IReadOnlyList<Parameter> _params;
    private readonly float[][] _m, _v;
    private readonly float[]?[] _u;
    private long _t;

    public ParameterOptimizer(TrainSettings settings, IReadOnlyList<Parameter> parameters)
    {
        _s = settings; _params = parameters;
        _m = parameters.Select(p => new float[p.Values.Length]).ToArray();
        _u = new float[]?[parameters.Count];
        _v = settings.Optimizer == OptimizerKind.Sgd ? [] : parameters.Select(p =>
            new float[p.Values.Length]).ToArray();
    }

    /// <summary>The learning rate at a step (0-based).</summary>
    public static double Rate(TrainSettings s, int step)
    {
        double lr = s.LearningRate;
        if (s.WarmupSteps > 0 && step < s.WarmupSteps) return lr * (step + 1) / s.WarmupSteps;
        int span = Math.Max(1, s.Steps - s.WarmupSteps);
        double progress = Math.Clamp((double)(step - s.WarmupSteps) / span, 0, 1);
        return s.Schedule switch
        {
            ScheduleKind.Cosine => lr * 0.5 * (1 + Math.Cos(Math.PI * progress)),
            ScheduleKind.Step => lr * Math.Pow(s.StepGamma, s.StepAt.Count(f => step >= f * s.Steps)),
            _ => lr,
        };
    }

    /// <summary>The global L2 norm of the gradients.</summary>
    public static double Norm(float[][] grads)
    {
        double s = 0;
        foreach (var g in grads) foreach (var x in g) s += (double)x * x;
        return Math.Sqrt(s);
    }

    /// <summary>One update with the gradients (same order as the parameters); returns the gradient norm.</summary>
    public double Step(float[][] grads, int step)
    {
        _t++;
        double norm = Norm(grads);
        float scale = _s.ClipNorm > 0 && norm > _s.ClipNorm ? (float)(_s.ClipNorm / norm) : 1f;
        float lr = (float)Rate(_s, step);
        float wd = (float)_s.WeightDecay, mu = (float)_s.Momentum;
        const float b2 = 0.999f, eps = 1e-8f;
        float c1 = 1 - MathF.Pow(mu, _t), c2 = 1 - MathF.Pow(b2, _t);
        for (int k = 0; k < _params.Count; k++)
        {
            var p = _params[k].Values; var g = grads[k]; var m = _m[k];
            float decay = _params[k].Decays ? wd : 0;
            float lrk = lr * (float)_params[k].LearningRateScale;
            switch (_s.Optimizer)
            {
                case OptimizerKind.Sgd:
                    for (int i = 0; i < p.Length; i++)
                    {
                        m[i] = mu * m[i] + g[i] * scale + decay * p[i];
                        p[i] -= lrk * m[i];
                    }
                    break;
                case OptimizerKind.Lamb:
                {
                    var vl = _v[k];
                    var u = _u[k] ??= new float[p.Length];
                    double pn = 0, un = 0;
                    for (int i = 0; i < p.Length; i++)
                    {
                        float gi = g[i] * scale;
                        m[i] = mu * m[i] + (1 - mu) * gi;
                        vl[i] = b2 * vl[i] + (1 - b2) * gi * gi;
                        u[i] = m[i] / c1 / (MathF.Sqrt(vl[i] / c2) + eps) + decay * p[i];
                        pn += (double)p[i] * p[i];
                        un += (double)u[i] * u[i];
                    }
                    float trust = pn > 0 && un > 0 ? (float)Math.Sqrt(pn / un) : 1f;
                    for (int i = 0; i < p.Length; i++) p[i] -= lrk * trust * u[i];
                    break;
                }
                default:
                    var v = _v[k];
                    bool decoupled = _s.Optimizer == OptimizerKind.AdamW;
                    for (int i = 0; i < p.Length; i++)
                    {
                        float gi = g[i] * scale + (decoupled ? 0 : decay * p[i]);
                        m[i] = mu * m[i] + (1 - mu) * gi;
                        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                        float upd = m[i] / c1 / (MathF.Sqrt(v[i] / c2) + eps);
                        p[i] -= lrk * (upd + (decoupled ? decay * p[i] : 0));
                    }
                    break;
            }
            _params[k].Constrain?.Invoke(p);
        }
        return norm;
    }
}
