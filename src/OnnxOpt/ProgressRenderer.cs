// How the CLI shows the libraries' progress (ProgressSink callbacks) on stderr:
//   terminal:   one line per task, rewritten in place at most 10 times a second:
//                 "\rquantize: calibration  120/500  41.3/s  ETA 9s"  (a newline when it ends)
//   redirected: nothing, unless --verbose: then a plain line when a task starts, every 10% and at its end
//   --quiet:    nothing
// Units are what the task counts (samples, steps, trials); the rate and the ETA come from the time since
// the task's first report.
using System.Diagnostics;
using System.Globalization;

namespace OnnxOpt.Cli;

public sealed class ProgressRenderer(TextWriter err, bool terminal, Func<double>? clock = null)
{
    private readonly Func<double> _clock = clock ?? MakeClock();
    private string? _task;
    private double _start, _lastDraw;
    private long _lastDecile;

    private static Func<double> MakeClock()
    {
        var sw = Stopwatch.StartNew();
        return () => sw.Elapsed.TotalSeconds;
    }

    public void Report(string task, long done, long total)
    {
        var now = _clock();
        if (task != _task)
        {
            if (_task is not null && terminal) err.WriteLine();
            _task = task;
            _start = now;
            _lastDraw = double.NegativeInfinity;
            _lastDecile = -1;
        }
        bool end = done >= total;
        if (terminal)
        {
            if (!end && now - _lastDraw < 0.1) return;
            _lastDraw = now;
            err.Write("\r" + Line(task, done, total, now - _start) + "\u001b[K");
            if (end) { err.WriteLine(); _task = null; }
            return;
        }
        var decile = total > 0 ? done * 10 / total : 0;
        if (decile == _lastDecile && !end) return;
        _lastDecile = decile;
        err.WriteLine(Line(task, done, total, now - _start));
        if (end) _task = null;
    }

    /// <summary>Ends a line left open by a task that stopped before its total (e.g. a search that met its
    /// budget early), so what follows starts on a line of its own.</summary>
    public void End()
    {
        if (_task is not null && terminal) err.WriteLine();
        _task = null;
    }

    public static string Line(string task, long done, long total, double seconds)
    {
        var c = CultureInfo.InvariantCulture;
        var rate = seconds > 0 ? done / seconds : 0;
        var s = string.Create(c, $"{task}  {done}/{total}");
        if (rate > 0) s += string.Create(c, $"  {rate:G3}/s");
        if (rate > 0 && done < total) s += "  ETA " + Duration((total - done) / rate);
        else if (done >= total) s += "  " + Duration(seconds);
        return s;
    }

    public static string Duration(double seconds) => seconds switch
    {
        < 60 => string.Create(CultureInfo.InvariantCulture, $"{Math.Ceiling(seconds):F0}s"),
        < 3600 => $"{(int)seconds / 60}m{(int)seconds % 60:D2}s",
        _ => $"{(int)seconds / 3600}h{(int)seconds % 3600 / 60:D2}m",
    };
}
