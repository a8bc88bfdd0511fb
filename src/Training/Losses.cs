// The training losses, each returning its value and its gradient with respect to the student's array
// (B = batch, the first axis; rows are the last axis for the softmax losses):
//   KL (Hinton):  L = T^2/B * sum_b sum_c p_bc (log p_bc - log q_bc),  p = softmax(t/T), q = softmax(s/T)
//                 dL/ds = T/B * (q - p)
//   MSE:          L = 1/n * sum (s - t)^2                               dL/ds = 2/n * (s - t)
//   CE:           L = -1/B * sum_b log softmax(s_b)[y_b]                 dL/ds = 1/B * (softmax(s) - onehot(y))
// Softmaxes are computed in float64 with the row maximum subtracted.
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
        int n = student.Length;
        for (int i = 0; i < n; i++)
        {
            double d = student[i] - teacher[i];
            total += d * d;
            grad[i] += (float)(weight * 2 * d / n);
        }
        return weight * total / n;
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
