// The training losses, each returning its value and its gradient with respect to the student's array
// (B = batch, the first axis; rows are the last axis for the softmax losses):
//   KL (Hinton):  L = T^2/B * sum_b sum_c p_bc (log p_bc - log q_bc),  p = softmax(t/T), q = softmax(s/T)
//                 dL/ds = T/B * (q - p)
//   MSE:          L = 1/n * sum (s - t)^2                               dL/ds = 2/n * (s - t)
//   CE:           L = -1/B * sum_b log softmax(s_b)[y_b]                 dL/ds = 1/B * (softmax(s) - onehot(y))
// Softmaxes are computed in float64 with the row maximum subtracted.
using System.Numerics;
using OnnxOpt.GraphIR;

namespace OnnxOpt.Training;

public static class Losses
{
    public static double KlDivergence(ReadOnlySpan<float> student, ReadOnlySpan<float> teacher, int classes,
        double temperature, Span<float> grad, double weight = 1)
    {
        int rows = student.Length / classes;
        double total = 0, t = temperature;
        var p = new double[classes];
        var q = new double[classes];
        for (int b = 0; b < rows; b++)
        {
            var s = student.Slice(b * classes, classes);
            var te = teacher.Slice(b * classes, classes);
            LogSoftmax(te, t, p);
            LogSoftmax(s, t, q);
            for (int c = 0; c < classes; c++)
            {
                double pc = Math.Exp(p[c]), qc = Math.Exp(q[c]);
                if (pc > 0) total += pc * (p[c] - q[c]);
                grad[b * classes + c] += (float)(weight * t / rows * (qc - pc));
            }
        }
        return weight * t * t * total / rows;
    }

    public static double MeanSquared(ReadOnlySpan<float> student, ReadOnlySpan<float> teacher, Span<float> grad,
        double weight = 1)
    {
        double total = 0;
        int n = student.Length, i = 0;
        // Vectors of floats, summed into a double every block so large feature maps keep their precision.
        int width = Vector<float>.Count;
        var g = new Vector<float>((float)(weight * 2 / n));
        while (i + width <= n)
        {
            var acc = Vector<float>.Zero;
            for (int end = Math.Min(n - width + 1, i + 256 * width); i < end; i += width)
            {
                var d = new Vector<float>(student[i..]) - new Vector<float>(teacher[i..]);
                acc += d * d;
                (new Vector<float>(grad[i..]) + g * d).CopyTo(grad[i..]);
            }
            total += Vector.Sum(acc);
        }
        for (; i < n; i++)
        {
            double d = student[i] - teacher[i];
            total += d * d;
            grad[i] += (float)(weight * 2 * d / n);
        }
        return weight * total / n;
    }

    /// <summary>Mean over samples of 1 - cos(mean_t s_t, mean_t y_t), the means over the tokens t with mask 1 (every
    /// token without a mask), for [batch, tokens, hidden] outputs; the gradient of that mean is added.</summary>
    public static double PooledCosine(ReadOnlySpan<float> student, ReadOnlySpan<float> teacher, int[] shape,
        ReadOnlySpan<float> mask, Span<float> grad, double weight = 1)
    {
        int batch = shape[0], hidden = shape[^1];
        int tokens = student.Length / Math.Max(1, batch * hidden);
        double total = 0;
        var ps = new double[hidden];
        var pt = new double[hidden];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(ps);
            Array.Clear(pt);
            double count = 0;
            for (int t = 0; t < tokens; t++)
            {
                var m = mask.IsEmpty ? 1 : mask[b * tokens + t];
                if (m == 0) continue;
                count += m;
                var at = ((long)b * tokens + t) * hidden;
                for (int h = 0; h < hidden; h++)
                {
                    ps[h] += m * student[(int)(at + h)];
                    pt[h] += m * teacher[(int)(at + h)];
                }
            }
            if (count == 0) continue;
            double dot = 0, ns = 0, nt = 0;
            for (int h = 0; h < hidden; h++) { dot += ps[h] * pt[h]; ns += ps[h] * ps[h]; nt += pt[h] * pt[h]; }
            ns = Math.Sqrt(ns) + 1e-12;
            nt = Math.Sqrt(nt) + 1e-12;
            var cos = dot / (ns * nt);
            total += 1 - cos;
            // d(1 - cos)/d ps_h = -(pt_h / (|ps| |pt|) - cos ps_h / |ps|^2); ps = sum_t m_t s_t (the 1/count of
            // the means cancels in the cosine).
            for (int t = 0; t < tokens; t++)
            {
                var m = mask.IsEmpty ? 1 : mask[b * tokens + t];
                if (m == 0) continue;
                var at = ((long)b * tokens + t) * hidden;
                for (int h = 0; h < hidden; h++)
                    grad[(int)(at + h)] += (float)(-weight / batch * m * (pt[h] / (ns * nt) - cos * ps[h] / (ns * ns)));
            }
        }
        return weight * total / batch;
    }

    public static double CrossEntropy(ReadOnlySpan<float> student, ReadOnlySpan<long> labels, int classes,
        Span<float> grad, double weight = 1)
    {
        int rows = student.Length / classes;
        double total = 0;
        var q = new double[classes];
        for (int b = 0; b < rows; b++)
        {
            long y = labels[b];
            if (y < 0 || y >= classes)
                throw new OnnxModelException($"label {y} of sample {b} in the batch is outside 0..{classes - 1}");
            LogSoftmax(student.Slice(b * classes, classes), 1, q);
            total -= q[y];
            for (int c = 0; c < classes; c++)
                grad[b * classes + c] += (float)(weight / rows * (Math.Exp(q[c]) - (c == y ? 1 : 0)));
        }
        return weight * total / rows;
    }

    /// <summary>log softmax(x / T) into <paramref name="into"/>.</summary>
    private static void LogSoftmax(ReadOnlySpan<float> x, double t, double[] into)
    {
        double max = double.NegativeInfinity;
        for (int c = 0; c < x.Length; c++) max = Math.Max(max, x[c] / t);
        double sum = 0;
        for (int c = 0; c < x.Length; c++) sum += Math.Exp(x[c] / t - max);
        double lse = max + Math.Log(sum);
        for (int c = 0; c < x.Length; c++) into[c] = x[c] / t - lse;
    }
}
