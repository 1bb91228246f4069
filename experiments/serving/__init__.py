"""Running a trained model at the factory: open and verify a downloaded model folder, predict
on a data file, export to ONNX, fine-tune on local rows, and describe the model (its card).

Everything here works offline from the folder ``fedpark model download`` wrote: the signed
manifest carries the model's package (architecture, feature plan, label names, the approved
contract), so nothing needs the hub or FedPark's training code to be read.
"""
