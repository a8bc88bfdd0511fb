// Recycled arrays for training loops: a step of forward and backward makes the same arrays every time (the
// activations, their gradients, the im2col buffers), and fresh large arrays cost page faults and full
// garbage collections. Inside an arena's scope, kernels take their arrays from it (zeroed, exact length);
// Recycle() hands every array taken since the last Recycle() back for reuse. Outside a scope (the default,
// and on worker threads) Buffers.New is plain `new T[n]`.
//   using (arena.Enter()) { forward; backward; use the results }  arena.Recycle();  // next step reuses them
// Arrays are recycled all at once, so views that share an array (Reshape) stay valid until Recycle().
using System.Numerics;

namespace OnnxOpt.Autodiff.Kernels;

public sealed class BufferArena<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private const int MinPooled = 1024;
    private readonly Dictionary<int, Stack<T[]>> _free = new();
    private readonly List<T[]> _taken = new();

    [ThreadStatic] private static BufferArena<T>? _current;

    /// <summary>Arrays currently handed out (for tests and memory figures).</summary>
    public int Taken => _taken.Count;

    /// <summary>Makes this arena the source of Buffers.New on this thread until the scope is disposed.</summary>
    public Scope Enter() => new(this);

    /// <summary>Every array taken since the last call becomes free for reuse: none may be used after this.</summary>
    public void Recycle()
    {
        foreach (var a in _taken)
        {
            if (!_free.TryGetValue(a.Length, out var s)) _free[a.Length] = s = new Stack<T[]>();
            s.Push(a);
        }
        _taken.Clear();
    }

    internal T[] Take(int n, bool clear = true)
    {
        T[] a;
        if (_free.TryGetValue(n, out var s) && s.Count > 0) { a = s.Pop(); if (clear) Array.Clear(a); }
        else a = new T[n];
        _taken.Add(a);
        return a;
    }

    /// <summary>Whether this thread is inside an arena's scope (a training loop: buffers are recycled per
    /// step).</summary>
    internal static bool Active => _current is not null;

    internal static T[] New(int n) => n >= MinPooled && _current is { } arena ? arena.Take(n) : new T[n];

    internal static T[] NewUninitialized(int n) => n >= MinPooled && _current is { } arena ? arena.Take(n, false)
        : GC.AllocateUninitializedArray<T>(n);

    public readonly struct Scope : IDisposable
    {
        private readonly BufferArena<T>? _previous;

        internal Scope(BufferArena<T> arena)
        {
            _previous = _current;
            _current = arena;
        }

        public void Dispose() => _current = _previous;
    }
}

/// <summary>A zeroed array of n elements: from the thread's current arena if there is one, else new.</summary>
internal static class Buffers<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    public static T[] New(int n) => BufferArena<T>.New(n);

    /// <summary>An array of n elements whose contents are left as found: only for outputs the caller writes
    /// whole.</summary>
    public static T[] NewUninitialized(int n) => BufferArena<T>.NewUninitialized(n);
}
