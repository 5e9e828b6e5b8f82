// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public final class GeneratorParams implements AutoCloseable {
  public GeneratorParams(Model model) throws GenAIException { throw new UnsupportedOperationException(); }
  public void setSearchOption(String optionName, double value) throws GenAIException { throw new UnsupportedOperationException(); }
  public void setSearchOption(String optionName, boolean value) throws GenAIException { throw new UnsupportedOperationException(); }
  @Override public void close() {}
}
