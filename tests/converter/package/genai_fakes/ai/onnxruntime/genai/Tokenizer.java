// Fake of onnxruntime-genai's Java API: the public signatures of src/java/src/main/java/ai/onnxruntime/genai as
// read in its sources (0.16-dev, the newest the source mirror holds; the pinned release's AAR is compiled against
// by the Gradle build in .github/workflows/android.yml). GenAiEngine.kt compiles against exactly these members,
// and genai_engine_check/ drives it through FakeNative. Not the real library.
package ai.onnxruntime.genai;

public class Tokenizer implements AutoCloseable {
  private boolean closed;

  public Tokenizer(Model model) throws GenAIException { FakeNative.check("tokenizer"); FakeNative.open.incrementAndGet(); }
  public Sequences encode(String string) throws GenAIException { FakeNative.check("encode"); return new Sequences(); }
  public int[] getEosTokenIds() throws GenAIException { return new int[] {0}; }
  public TokenizerStream createStream() throws GenAIException { FakeNative.check("stream"); return new TokenizerStream(); }
  @Override public synchronized void close() { if (!closed) { closed = true; FakeNative.open.decrementAndGet(); } }
}
