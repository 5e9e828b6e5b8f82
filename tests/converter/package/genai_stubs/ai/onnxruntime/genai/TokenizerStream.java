// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public class TokenizerStream implements AutoCloseable {
  public String decode(int token) throws GenAIException { throw new UnsupportedOperationException(); }
  @Override public void close() {}
}
