// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public class Tokenizer implements AutoCloseable {
  public Tokenizer(Model model) throws GenAIException { throw new UnsupportedOperationException(); }
  public Sequences encode(String string) throws GenAIException { throw new UnsupportedOperationException(); }
  public int[] getEosTokenIds() throws GenAIException { throw new UnsupportedOperationException(); }
  public TokenizerStream createStream() throws GenAIException { throw new UnsupportedOperationException(); }
  @Override public void close() {}
}
