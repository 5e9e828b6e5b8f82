// Fake of onnxruntime-genai's Java API: the public signatures of src/java/src/main/java/ai/onnxruntime/genai as
// read in its sources (0.16-dev, the newest the source mirror holds; the pinned release's AAR is compiled against
// by the Gradle build in .github/workflows/android.yml). GenAiEngine.kt compiles against exactly these members,
// and genai_engine_check/ drives it through FakeNative. Not the real library.
package ai.onnxruntime.genai;

public final class Model implements AutoCloseable {
  private boolean closed;

  public Model(String modelPath) throws GenAIException {
    if (FakeNative.failAt.equals("link")) throw new UnsatisfiedLinkError("dlopen failed: library \"libonnxruntime-genai.so\" not found");
    FakeNative.check("model");
    FakeNative.open.incrementAndGet();
  }

  @Override public synchronized void close() {
    if (closed) return;
    closed = true;
    if (FakeNative.generating > 0) FakeNative.freedWhileGenerating = true;
    FakeNative.open.decrementAndGet();
  }
}
